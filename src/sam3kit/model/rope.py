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

    Each pair (2k, 2k+1) is read as the complex number ``x_2k + i x_2k+1`` and multiplied by ``cos + i sin``:
    one pass over ``x`` (in fp32), whatever its strides (the per-head views of a projection are not contiguous).
    """
    cos, sin = rope
    n = cos.shape[0]
    head, tail = (x, None) if n == x.shape[-2] else (x[..., :n, :], x[..., n:, :])
    pairs = head.float().unflatten(-1, (-1, 2))
    if pairs.stride(-1) != 1 or pairs.storage_offset() % 2 or any(st % 2 for st in pairs.stride()[:-1]):
        pairs = pairs.clone(memory_format=torch.contiguous_format)  # a fresh, aligned copy
    out = torch.view_as_real(torch.view_as_complex(pairs) * torch.complex(cos, sin)).flatten(-2).type_as(x)
    return out if tail is None else torch.cat([out, tail], dim=-2)
