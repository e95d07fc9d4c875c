"""``SpeedOptions``: which speed features ``sam3kit.load`` applies to the model it builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from torch import nn

from ..errors import InputError


@dataclass(frozen=True)
class SpeedOptions:
    """The speed features of a loaded model.

    cpu_kernels: the CPU speed set (``sam3kit.speed.cpu``: attention and MLP kernel choices for torch's CPU
        kernels; the same numbers up to rounding). None (default) = on when the model is on the CPU; False = the
        plain model (for ``torch.compile``, exporters, or a CPU run that must match CUDA's code path).
    int8: int8 Linear layers in the ViT on the CPU (``sam3kit.speed.quantize_int8`` with its default options;
        faster, slightly less exact; needs ``sam3kit[fast]``).
    """

    cpu_kernels: Optional[bool] = None
    int8: bool = False

    @classmethod
    def parse(cls, fast: Union[None, str, "SpeedOptions"]) -> "SpeedOptions":
        """``fast`` as ``sam3kit.load`` takes it: None (the defaults), a ``SpeedOptions``, or the names "int8"
        (``SpeedOptions(int8=True)``) and "none" (the defaults)."""
        if fast is None:
            return cls()
        if isinstance(fast, cls):
            return fast
        if isinstance(fast, str) and fast.lower() in _NAMED:
            return _NAMED[fast.lower()]
        raise InputError(f"unknown fast mode {fast!r}; use a sam3kit.speed.SpeedOptions, one of {sorted(_NAMED)} "
                         "or None")

    def cpu_kernels_on(self, device_type: str) -> bool:
        """Whether the CPU set applies to a model on a device of this type ("cpu", "cuda", ...)."""
        return self.cpu_kernels if self.cpu_kernels is not None else device_type == "cpu"


_NAMED = {"none": SpeedOptions(), "int8": SpeedOptions(int8=True)}


def apply_speed(model: nn.Module, options: Union[None, str, SpeedOptions] = None) -> nn.Module:
    """Apply ``options`` (as ``SpeedOptions.parse`` reads them) to a built ``Sam3Model`` in place: int8 first, then
    the CPU set; returns ``model``."""
    options = SpeedOptions.parse(options)
    if options.int8:
        from .int8 import quantize_int8

        quantize_int8(model)
    if options.cpu_kernels_on(model.device.type):
        from .cpu import apply_cpu_kernels

        apply_cpu_kernels(model)
    return model
