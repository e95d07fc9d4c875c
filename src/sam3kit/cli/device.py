"""``--device``: a device name checked against what this machine has, before any weights are read."""

from __future__ import annotations


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` if available, else ``cpu``; any other name is returned as given once checked.

    Raises ``InputError`` for a name torch does not know, or a CUDA / MPS device this machine does not have.
    """
    import torch

    from ..errors import InputError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}: use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available here (see 'sam3kit env'); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"--device {name}: MPS is not available here; use --device cpu")
    return name
