"""Recording what the official code passes between its functions: wrappers on instance attributes that keep the
arguments or results of each call, numerics untouched; and the plain tensor copies stored in ``cases.pt``."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def record(obj, name, store, keep_args=False):
    orig = getattr(obj, name)

    def wrapper(*args, **kwargs):
        out = orig(*args, **kwargs)
        store.append((args, kwargs, out) if keep_args else out)
        return out

    setattr(obj, name, wrapper)
    try:
        yield store
    finally:
        delattr(obj, name)


@contextmanager
def record_interpolate_inputs(module, store):
    """Replace `module.F` (torch.nn.functional) by a proxy recording the inputs of F.interpolate."""
    real_f = module.F

    class _Proxy:
        def __getattr__(self, n):
            return getattr(real_f, n)

        @staticmethod
        def interpolate(x, *a, **k):
            store.append(x.detach().clone())
            return real_f.interpolate(x, *a, **k)

    module.F = _Proxy()
    try:
        yield store
    finally:
        module.F = real_f


def tensor_copy(x, dtype=None):
    """A detached contiguous copy of ``x`` (tensor, numpy array or list) as a tensor, optionally cast."""
    x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    x = x.detach().clone().contiguous()
    return x.to(dtype) if dtype is not None else x
