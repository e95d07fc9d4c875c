"""Coordinates between an original image and the model input.

The model sees every image resized to ``size`` x ``size`` (the aspect ratio is not kept, as in the official
preprocessing), so a pixel (x, y) of a ``width`` x ``height`` image is (x * size / width, y * size / height) in the
model input. The detector reads and writes boxes normalised by the model input side instead (cxcywh in, xyxy out),
which are the same numbers as boxes normalised by the original size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from torch import Tensor

from ..ops.boxes import box_xyxy_to_cxcywh, normalize_boxes, scale_boxes

ArrayLike = Union[np.ndarray, Tensor]


def _tensor(x: ArrayLike) -> Tensor:
    """float32 tensor (on its device for a tensor; a CPU view of a numpy array)."""
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    return t.float()


@dataclass(frozen=True)
class ImageTransform:
    """The frames of one image: ``height`` x ``width`` pixels originally, ``size`` x ``size`` at the model input.

    Every method takes float coordinates (numpy or torch, any leading dimensions) and returns float32 tensors.
    """

    height: int
    width: int
    size: int

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the original image."""
        return self.height, self.width

    # ------------------------------------------------------------------ detector (normalised boxes)
    def boxes_to_detector(self, boxes: ArrayLike) -> Tensor:
        """(..., 4) pixel xyxy of the original image -> (..., 4) normalised cxcywh (the detector's exemplars)."""
        return normalize_boxes(box_xyxy_to_cxcywh(_tensor(boxes)), self.width, self.height)

    def boxes_from_detector(self, boxes: ArrayLike) -> Tensor:
        """(..., 4) normalised xyxy (the detector's output) -> (..., 4) pixel xyxy of the original image, not
        clipped (as the official post-processing)."""
        return scale_boxes(_tensor(boxes), self.width, self.height)

    # ------------------------------------------------------------------ tracker (model-input pixels)
    def _to_input(self) -> tuple[float, float]:
        return self.size / self.width, self.size / self.height

    def points_to_model(self, points: ArrayLike) -> Tensor:
        """(..., 2) pixel (x, y) of the original image -> (..., 2) pixels of the model input (0..size)."""
        sx, sy = self._to_input()
        p = _tensor(points)
        return p * torch.tensor([sx, sy], dtype=p.dtype, device=p.device)

    def boxes_to_model(self, boxes: ArrayLike) -> Tensor:
        """(..., 4) pixel xyxy of the original image -> (..., 4) xyxy pixels of the model input (0..size)."""
        sx, sy = self._to_input()
        return scale_boxes(_tensor(boxes), sx, sy)

    def points_from_model(self, points: ArrayLike) -> Tensor:
        """Inverse of ``points_to_model`` (up to rounding)."""
        p = _tensor(points)
        return p * torch.tensor([self.width / self.size, self.height / self.size], dtype=p.dtype, device=p.device)

    def boxes_from_model(self, boxes: ArrayLike) -> Tensor:
        """Inverse of ``boxes_to_model`` (up to rounding)."""
        return scale_boxes(_tensor(boxes), self.width / self.size, self.height / self.size)
