"""Box format conversions and scaling. Every function keeps the leading dimensions: boxes are (..., 4).

Formats: ``cxcywh`` (centre x, centre y, width, height) and ``xyxy`` (left, top, right, bottom). "Normalised"
means divided by the image width (x, w) and height (y, h). Validation of user boxes (pixels of the original
image) is ``pipelines.prompts.check_boxes``; the frame changes of the pipelines are ``pipelines.coords``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(..., 4) cxcywh -> (..., 4) xyxy, same units."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """(..., 4) xyxy -> (..., 4) cxcywh, same units."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def scale_boxes(boxes: Tensor, width: float, height: float) -> Tensor:
    """Multiply x-like coordinates by ``width`` and y-like ones by ``height`` (either format).

    Normalised -> pixels with the image size; pixels of one frame -> pixels of another with the size ratios.
    The factors are rounded to the dtype of ``boxes`` first.
    """
    factor = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    return boxes * factor


def normalize_boxes(boxes: Tensor, width: float, height: float) -> Tensor:
    """Pixel boxes of a ``width`` x ``height`` image -> normalised boxes (either format), by division (the
    correctly rounded quotient, not a product with a rounded reciprocal)."""
    size = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    return boxes / size
