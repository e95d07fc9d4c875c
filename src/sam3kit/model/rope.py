"""The one 2-D axial rotary position embedding (RoPE) of SAM 3, computed rather than read from a buffer.

Convention (official ``compute_axial_cis``): a head of width ``dim`` holds ``dim // 2`` rotation pairs made of
*adjacent* channels (2k, 2k+1). Pairs ``0 .. dim//4 - 1`` rotate by ``x * f_m`` and the next ``dim//4`` pairs by
``y * f_m`` with ``f_m = theta ** (-4m / dim)``. Token ``t`` of an ``end_x`` x ``end_y`` grid sits at
``x = (t mod end_x) * scale``, ``y = (t div end_x) * scale`` (row-major). The rotation runs in fp32.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

Rope = tuple[Tensor, Tensor]
"""(cos, sin), each (N, dim // 2) float32: the rotation of N consecutive tokens."""


def axial_rope(dim: int, end_x: int, end_y: int, *, theta: float = 10000.0, scale: float = 1.0,
               device: Optional[torch.device] = None) -> Rope:
    """The RoPE table of an ``end_x`` x ``end_y`` grid for heads of width ``dim``; (cos, sin) of shape (N, dim/2)."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4, device=device)[: dim // 4].float() / dim))
    t = torch.arange(end_x * end_y, device=device, dtype=torch.float32)
    tx = (t % end_x) * scale
    ty = torch.div(t, end_x, rounding_mode="floor") * scale
    angles = torch.cat([torch.outer(tx, freqs), torch.outer(ty, freqs)], dim=-1)
    return torch.cos(angles), torch.sin(angles)


def repeat_rope(rope: Rope, times: int) -> Rope:
    """The same table repeated for ``times`` consecutive groups of tokens (memory frames)."""
    return rope[0].repeat(times, 1), rope[1].repeat(times, 1)


def apply_rope(x: Tensor, rope: Rope) -> Tensor:
    """Rotate the first ``len(rope)`` tokens of ``x`` (..., N, dim); later tokens pass unchanged.

    Real arithmetic on each pair (a, b) = (x_2k, x_2k+1): ``(a cos - b sin, a sin + b cos)``, in fp32 (the
    products of a half-precision ``x`` with the fp32 table are fp32), the result in the dtype of ``x``. Any strides
    (the per-head views of a projection are not contiguous). ``sam3kit.speed`` has the same rotation as one
    complex multiplication, faster with torch's CPU kernels.
    """
    cos, sin = rope
    n = cos.shape[0]
    head = x if n == x.shape[-2] else x[..., :n, :]
    pairs = head.unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2).to(x.dtype)
    return out if n == x.shape[-2] else torch.cat([out, x[..., n:, :]], dim=-2)
