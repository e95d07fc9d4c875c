"""Sine position encodings (the 2-D map encoding of DETR / SAM)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor


def sine_position_2d(height: int, width: int, num_feats: int, *, device: Optional[torch.device] = None,
                     dtype: torch.dtype = torch.float32, temperature: float = 10000.0) -> Tensor:
    """Normalised 2-D sine encoding of an H x W grid: (num_feats, H, W), channels [y-block, x-block].

    Each axis uses positions ``1..H`` divided by ``H + 1e-6`` and scaled by 2*pi; within a block, sin and cos
    alternate on even/odd channels with ``dim_t[i] = temperature ** (2 * (i // 2) / (num_feats // 2))``.
    """
    npf = num_feats // 2
    scale = 2 * math.pi
    y = torch.arange(1, height + 1, device=device, dtype=torch.float32) / (height + 1e-6) * scale
    x = torch.arange(1, width + 1, device=device, dtype=torch.float32) / (width + 1e-6) * scale
    dim_t = torch.arange(npf, device=device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / npf)
    py = _interleave(y[:, None] / dim_t)  # (H, npf)
    px = _interleave(x[:, None] / dim_t)  # (W, npf)
    pos = torch.cat([py[:, None, :].expand(height, width, npf), px[None, :, :].expand(height, width, npf)], dim=-1)
    return pos.permute(2, 0, 1).to(dtype)


def sine_coords(coords: Tensor, num_feats: int, *, temperature: float = 10000.0) -> Tensor:
    """Sine encoding of raw normalised coordinates (box / query encodings): (...) -> (..., num_feats).

    The coordinate is scaled by 2*pi (no other normalisation); sin on even and cos on odd channels with
    ``dim_t[i] = temperature ** (2 * (i // 2) / num_feats)``. Computed in fp32.
    """
    dim_t = torch.arange(num_feats, device=coords.device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    return _interleave(coords.float()[..., None] * (2 * math.pi) / dim_t)


def _interleave(p: Tensor) -> Tensor:
    """sin on even channels, cos on odd channels of the last dimension."""
    return torch.stack([p[..., 0::2].sin(), p[..., 1::2].cos()], dim=-1).flatten(-2)
