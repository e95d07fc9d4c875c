"""Opt-in speed features, applied to a built model from outside (style convention 7).

- ``quantize_int8(model, Int8Options())``: int8 Linear layers on the CPU (ONNX Runtime; ``sam3kit[fast]``);
  also ``sam3kit.load(..., fast="int8")``.
- another input resolution: ``Sam3Config.with_image_size`` / ``sam3kit.load(..., image_size=672)``.

``import sam3kit.speed`` imports no optional dependency.
"""

from __future__ import annotations

__all__ = ["Int8Options", "quantize_int8"]


def __getattr__(name: str):
    if name in __all__:
        from . import int8

        return getattr(int8, name)
    raise AttributeError(f"module 'sam3kit.speed' has no attribute {name!r}")
