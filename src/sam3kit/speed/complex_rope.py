"""RoPE as one complex multiplication: the same rotation as ``model.rope.apply_rope``, faster on the CPU.

Each pair (x_2k, x_2k+1) is read as the complex number ``x_2k + i x_2k+1`` and multiplied by ``cos + i sin``:
one vectorised pass over ``x`` where the real form's products of the interleaved halves read and write with a
stride of 2 (torch's CPU kernels do not vectorise those). Complex tensors do not export to ONNX and are not what
``torch.compile`` fuses best, so the plain model uses the real form and ``CpuAttention`` this one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..model.rope import Rope


def apply_rope_complex(x: Tensor, rope: Rope) -> Tensor:
    """``apply_rope(x, rope)`` by complex multiplication: x (..., N, dim), the first ``len(rope)`` tokens rotated
    (in fp32), later tokens unchanged; the result in the dtype of ``x``."""
    cos, sin = rope
    n = cos.shape[0]
    head, tail = (x, None) if n == x.shape[-2] else (x[..., :n, :], x[..., n:, :])
    pairs = head.float().unflatten(-1, (-1, 2))
    if pairs.stride(-1) != 1 or pairs.storage_offset() % 2 or any(st % 2 for st in pairs.stride()[:-1]):
        pairs = pairs.clone(memory_format=torch.contiguous_format)  # a complex view needs aligned pairs
    out = torch.view_as_real(torch.view_as_complex(pairs) * torch.complex(cos, sin)).flatten(-2).type_as(x)
    return out if tail is None else torch.cat([out, tail], dim=-2)
