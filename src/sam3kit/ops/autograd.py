"""When a fused in-place form may be used instead of its differentiable twin."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def needs_autograd(*tensors: Optional[Tensor]) -> bool:
    """True when the differentiable form must run: autograd records and one of ``tensors`` requires grad (``out=``
    writes are not allowed then), or a tracer records the computation (the ONNX export: ``out=`` writes into views
    are not recorded as the data flow)."""
    if torch.jit.is_tracing():
        return True
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
