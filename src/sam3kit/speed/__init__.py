"""Opt-in speed features, applied to a built model from outside; the model code keeps its one plain form.

- ``apply_cpu_kernels(model)`` / ``remove_cpu_kernels(model)``: the CPU speed set (``cpu.py``): attention by
  explicit products where one side is short, projections folded for many queries over few keys, RoPE by complex
  multiplication, the ViT and encoder MLP steps in row blocks. ``sam3kit.load`` applies it on the CPU.
- ``quantize_int8(model, Int8Options())``: int8 Linear layers on the CPU (ONNX Runtime; ``sam3kit[fast]``).
- ``SpeedOptions``: what ``sam3kit.load(..., fast=SpeedOptions(...))`` applies (``fast="int8"`` also works).
- another input resolution: ``Sam3Config.with_image_size`` / ``sam3kit.load(..., image_size=672)``.

``import sam3kit.speed`` imports no optional dependency.
"""

from __future__ import annotations

__all__ = ["SpeedOptions", "apply_speed", "apply_cpu_kernels", "remove_cpu_kernels", "has_cpu_kernels",
           "Int8Options", "quantize_int8"]

_HOMES = {"SpeedOptions": "options", "apply_speed": "options", "apply_cpu_kernels": "cpu",
          "remove_cpu_kernels": "cpu", "has_cpu_kernels": "cpu", "Int8Options": "int8", "quantize_int8": "int8"}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'sam3kit.speed' has no attribute {name!r}")
