"""Box format conversions and checks. Every function keeps the leading dimensions: boxes are (..., 4).

Formats: ``cxcywh`` (centre x, centre y, width, height), ``xyxy`` (left, top, right, bottom), ``xywh``
(left, top, width, height). "Normalised" means divided by the image width (x, w) and height (y, h).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InputError


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(..., 4) cxcywh -> (..., 4) xyxy, same units."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """(..., 4) xyxy -> (..., 4) cxcywh, same units."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def box_xywh_to_cxcywh(boxes: Tensor) -> Tensor:
    """(..., 4) xywh (top-left corner + size) -> (..., 4) cxcywh, same units."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x + 0.5 * w, y + 0.5 * h, w, h], dim=-1)


def box_xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """(..., 4) xyxy -> (..., 4) xywh (top-left corner + size), same units."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0, y0, x1 - x0, y1 - y0], dim=-1)


def scale_boxes(boxes: Tensor, width: float, height: float) -> Tensor:
    """Multiply x-like coordinates by ``width`` and y-like ones by ``height`` (any of the three formats).

    Normalised -> pixels with the image size; pixels -> normalised with ``1 / size``.
    """
    factor = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    return boxes * factor


def normalize_boxes(boxes: Tensor, width: float, height: float) -> Tensor:
    """Pixel boxes of a ``width`` x ``height`` image -> normalised boxes (any of the three formats)."""
    return scale_boxes(boxes, 1.0 / width, 1.0 / height)


def check_boxes(boxes: Tensor, fmt: str, *, name: str = "boxes") -> None:
    """Raise ``InputError`` unless ``boxes`` is a finite floating (..., 4) tensor of well-formed ``fmt`` boxes.

    Well-formed: width and height >= 0 (for ``xyxy``: x1 >= x0 and y1 >= y0). Coordinates may lie outside
    the image. Reads the values (a device sync); call it once per user request, not inside the model.
    """
    if fmt not in ("xyxy", "cxcywh", "xywh"):
        raise ValueError(f"unknown box format {fmt!r}; expected 'xyxy', 'cxcywh' or 'xywh'")
    if not isinstance(boxes, Tensor) or not boxes.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor of shape (..., 4), got {type(boxes).__name__}"
                         + (f" of dtype {boxes.dtype}" if isinstance(boxes, Tensor) else ""))
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise InputError(f"{name} must have shape (..., 4) ({fmt}), got {tuple(boxes.shape)}")
    if not torch.isfinite(boxes).all():
        raise InputError(f"{name} contains NaN or infinite coordinates")
    if fmt == "xyxy":
        sizes = boxes[..., 2:] - boxes[..., :2]
    else:
        sizes = boxes[..., 2:]
    if (sizes < 0).any():
        what = "x1 < x0 or y1 < y0" if fmt == "xyxy" else "a negative width or height"
        raise InputError(f"{name} ({fmt}) has {what}; boxes must be well-formed")
