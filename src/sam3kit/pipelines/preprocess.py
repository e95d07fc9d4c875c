"""Image preprocessing of the official image path: square resize (no padding, aspect not kept) with bilinear
antialiasing on uint8 values, then ``/255`` and normalisation with mean = std = 0.5 to [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def preprocess(images: list[np.ndarray], size: int, *, device: torch.device, dtype: torch.dtype) -> Tensor:
    """RGB uint8 arrays (H, W, 3), any sizes -> (B, 3, size, size) in [-1, 1]."""
    out = []
    for img in images:
        t = torch.from_numpy(img if img.flags.writeable else img.copy()).permute(2, 0, 1)[None]  # (1, 3, H, W) uint8
        if t.shape[-2:] != (size, size):
            t = _resize_uint8(t, size)
        out.append(t)
    x = torch.cat(out).to(device).float() / 255.0  # uint8 over the bus (a quarter of float32's bytes), then float
    return ((x - 0.5) / 0.5).to(dtype)


def _resize_uint8(t: Tensor, size: int) -> Tensor:
    """Bilinear + antialias resize computed on uint8 input with a uint8 result (as torchvision v2 does)."""
    try:
        return F.interpolate(t.contiguous(memory_format=torch.channels_last), size=(size, size), mode="bilinear",
                             antialias=True, align_corners=False).contiguous()
    except RuntimeError:  # uint8 kernels are CPU-only: compute in float and round like the uint8 kernel
        r = F.interpolate(t.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return r.round_().clamp_(0, 255).to(torch.uint8)
