"""The int8 and fp16 variants of exported graphs, made from the saved fp32 graphs with ONNX Runtime's tools.

- int8 (``quantize_int8``): dynamic quantization of every matrix product with a constant weight (the ViT's Linear
  layers in the vision encoder): weights int8, symmetric, one scale per output channel, reduced to 7 bits
  (``reduce_range``, as ``sam3kit.speed.quantize_int8`` does: the u8 x s8 kernels of CPUs without VNNI saturate
  int16 sums otherwise); activations uint8 with one scale per call, computed at run time. Attention products,
  convolutions, norms stay fp32.
- fp16 (``convert_fp16``): weights and compute in fp16, float32 inputs and outputs (casts at the borders), for GPU
  execution providers; the ops ONNX Runtime's converter keeps in fp32 by default (``TopK``, ``Range``, ...) and
  ``FP32_OPS`` stay fp32. ONNX Runtime's CPU provider runs these graphs too (the tests compare them with the fp32
  graphs there).
"""

from __future__ import annotations

import logging
from pathlib import Path


FP32_OPS = ("ScatterElements",)
"""Ops the fp16 graphs keep in fp32 besides ONNX Runtime's defaults: the ROI-align weights of the exemplar boxes are
summed with ``ScatterElements(reduction="add")``, which ONNX Runtime's CPU provider has no fp16 kernel for (and
box coordinates in feature pixels keep their precision)."""


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_int8(src: Path, dest: Path, tmp: Path, limit: int) -> Path:
    """``src`` (an fp32 graph) -> ``dest`` with int8 matrix products; returns ``dest``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .export import save_model

    staged = tmp / dest.name
    root = logging.getLogger()
    quiet = _DropAdvice()
    root.addFilter(quiet)  # the quantizer advises a shape-inference pre-pass on the root logger, every time
    try:
        quantize_dynamic(str(src), str(staged), op_types_to_quantize=["MatMul"], per_channel=True,
                         reduce_range=True, weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    finally:
        root.removeFilter(quiet)
    proto = onnx.load(str(staged))
    save_model(proto, dest, limit)
    staged.unlink()
    return dest


def convert_fp16(src: Path, dest: Path, limit: int) -> Path:
    """``src`` (an fp32 graph) -> ``dest`` computing in fp16 with float32 inputs and outputs; returns ``dest``."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    from .export import save_model

    proto = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True,
                                     op_block_list=DEFAULT_OP_BLOCK_LIST + list(FP32_OPS))
    save_model(proto, dest, limit)
    return dest
