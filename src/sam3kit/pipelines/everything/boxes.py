"""Boxes of masks, in SAM 1's convention: xyxy of the first and last foreground column and row, both inclusive
(a one-pixel mask has x0 == x1), and [0, 0, 0, 0] for an empty mask. The boxes of automatic masks, their NMS and
their ``bbox`` records use it (``upsampled.upsampled_counts`` gives the same boxes for masks not upsampled yet).
"""

from __future__ import annotations

import torch
from torch import Tensor


def mask_boxes(masks: Tensor) -> Tensor:
    """(N, H, W) bool -> (N, 4) int64 inclusive xyxy boxes (zeros for an empty mask)."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.int64, device=masks.device)
    rows = masks.any(dim=2)  # (N, H)
    cols = masks.any(dim=1)  # (N, W)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ys, h).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1)
    x0 = torch.where(cols, xs, w).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1)
    out = torch.stack([x0, y0, x1, y1], dim=1)
    empty = ~rows.any(dim=1)
    return torch.where(empty[:, None], torch.zeros_like(out), out)
