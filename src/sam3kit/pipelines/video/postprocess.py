"""From the tracker's low-resolution logits to a frame's output (official ``_get_orig_video_res_output``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...model.tracker.video_step import non_overlapping
from ...ops.components import component_areas

HOLE_LOGIT = 0.1
"""A filled hole gets logit +0.1, a removed speck -0.1 (official ``fill_holes_in_mask_scores``)."""


def fill_holes(logits: Tensor, max_area: int) -> Tensor:
    """Official ``fill_holes_in_mask_scores`` on (N, 1, H, W) logits: background components (logit <= 0, 8-connected)
    of at most ``max_area`` pixels become +0.1; then foreground components of at most ``min(max_area, area // 2)``
    pixels (area: the object's foreground) become -0.1. ``max_area`` <= 0: unchanged."""
    if max_area <= 0 or logits.shape[0] == 0:
        return logits
    x = logits[:, 0]
    bg = x <= 0
    x = torch.where(bg & (component_areas(bg) <= max_area), torch.full_like(x, HOLE_LOGIT), x)
    fg = x > 0
    limit = torch.div(fg.flatten(1).sum(1), 2, rounding_mode="floor").clamp(max=max_area).view(-1, 1, 1)
    x = torch.where(fg & (component_areas(fg) <= limit), torch.full_like(x, -HOLE_LOGIT), x)
    return x[:, None]


def to_frame_size(low_res: Tensor, height: int, width: int, *, non_overlap: bool, hole_area: int) -> Tensor:
    """(B, 1, 4g, 4g) logits -> (B, 1, H, W) float32 logits at the frame's size: bilinear upsampling
    (align_corners=False, no antialias), then optionally the non-overlap constraint and hole filling."""
    x = low_res.float()
    if tuple(x.shape[-2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return finish(x, non_overlap=non_overlap, hole_area=hole_area)


def finish(logits: Tensor, *, non_overlap: bool, hole_area: int) -> Tensor:
    """The optional output steps on (B, 1, H, W) logits at the frame's size."""
    if non_overlap:
        logits = non_overlapping(logits)
    return fill_holes(logits, hole_area)
