"""Crops of automatic mask generation (SAM 1's crop layers) and the way back from a crop to the whole image.

Layer 0 is the whole image. Layer i >= 1 cuts the image into 2**i x 2**i crops that overlap by
``int(ratio * short_side * 2 / 2**i)`` pixels: each crop is ``ceil((overlap * (n - 1) + side) / n)`` pixels long
on a side of ``side`` pixels (n = 2**i crops along it), crop k starts at ``int((length - overlap) * k)`` and is cut
at the image border. Crops of a layer are listed column by column (x outer, y inner), as SAM 1 lists them.

Boxes are pixel xyxy of the crop or of the image (integers as Python lists here); masks found on a crop return to
the image by an offset (boxes, points) or zero padding (masks).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

EDGE_TOLERANCE = 20.0
"""Pixels: a mask box side this close to a crop's border (and not to the image's) means the mask was cut by the
crop, and SAM 1 drops it (its ``atol``)."""


def crop_boxes(height: int, width: int, n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """The crops of layers 0..n_layers of a height x width image.

    Returns:
        boxes: [x0, y0, x1, y1] pixel boxes (x1, y1 exclusive), the whole image first;
        layers: the layer of each box.
    """
    boxes, layers = [[0, 0, int(width), int(height)]], [0]
    short = min(height, width)
    for layer in range(1, n_layers + 1):
        n = 2 ** layer
        overlap = int(overlap_ratio * short * (2 / n))
        cw = int(math.ceil((overlap * (n - 1) + width) / n))
        ch = int(math.ceil((overlap * (n - 1) + height) / n))
        xs = [int((cw - overlap) * k) for k in range(n)]
        ys = [int((ch - overlap) * k) for k in range(n)]
        for x0 in xs:
            for y0 in ys:
                boxes.append([x0, y0, min(x0 + cw, width), min(y0 + ch, height)])
                layers.append(layer)
    return boxes, layers


def uncrop_boxes(boxes: Tensor, crop: Sequence[int]) -> Tensor:
    """(N, 4) xyxy boxes in pixels of ``crop`` -> (N, 4) pixels of the image (the crop's offset added)."""
    x0, y0 = crop[0], crop[1]
    return boxes + torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype, device=boxes.device)


def uncrop_points(points: np.ndarray, crop: Sequence[int]) -> np.ndarray:
    """(N, 2) pixel (x, y) of ``crop`` -> (N, 2) pixels of the image."""
    return points + np.array([crop[0], crop[1]], dtype=points.dtype)


def uncrop_mask(mask: np.ndarray, crop: Sequence[int], height: int, width: int) -> np.ndarray:
    """(h, w) bool mask of ``crop`` -> (height, width) bool mask of the image, zero outside the crop."""
    x0, y0, x1, y1 = crop
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return mask
    out = np.zeros((height, width), dtype=bool)
    out[y0:y1, x0:x1] = mask
    return out


def near_crop_edge(boxes: Tensor, crop: Sequence[int], image_box: Sequence[int],
                   tolerance: float = EDGE_TOLERANCE) -> Tensor:
    """Which boxes touch a border of ``crop`` that is not a border of the image.

    Args:
        boxes: (N, 4) xyxy in pixels of the crop.
        crop: the crop's [x0, y0, x1, y1] in pixels of the image.
        image_box: [0, 0, width, height] of the image.
    Returns:
        (N,) bool: some side of the box (in image pixels) is within ``tolerance`` of the crop's same side and not
        within it of the image's.
    """
    b = uncrop_boxes(boxes.double(), crop)
    c = torch.tensor(crop, dtype=torch.float64, device=b.device)
    im = torch.tensor(image_box, dtype=torch.float64, device=b.device)
    near_crop = (b - c).abs() <= tolerance
    near_image = (b - im).abs() <= tolerance
    return (near_crop & ~near_image).any(dim=1)
