"""When a fused in-place form may be used instead of its differentiable twin."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def needs_autograd(*tensors: Optional[Tensor]) -> bool:
    """True when autograd records and one of ``tensors`` requires grad: then ``out=`` writes are not allowed and
    the differentiable form must run."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
