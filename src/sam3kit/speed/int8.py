"""The fast CPU path: int8 Linear layers run by ONNX Runtime's dynamic-quantization GEMM.

``quantize_int8(model)`` swaps every ``nn.Linear`` of the chosen parts (by default the ViT trunk, about 95 % of
the work of an image) for an ``Int8Linear``: the weight is quantized once to int8, one scale per output channel
(symmetric; 7-bit when ``reduce_range``, which avoids the int16 saturation of the u8 x s8 kernels used by x86 CPUs
without VNNI); at run time ONNX Runtime quantizes the activations to uint8 with one scale per call and runs an
integer GEMM (``com.microsoft.DynamicQuantizeMatMul``), output fp32 plus the fp32 bias. Attention (torch's
fused SDPA), LayerNorm, GELU, RoPE and the convolutions stay fp32.

Needs the optional dependency onnxruntime (``pip install 'sam3kit[fast]'``); building takes seconds, nothing is
written to disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from ..weights.pages import release_mapped

log = logging.getLogger(__name__)

PARTS = {
    "vit": "detector_model.vision_encoder.backbone",
    "text": "detector_model.text_encoder",
}


@dataclass(frozen=True)
class Int8Options:
    """What is quantized, and how.

    parts: model parts whose Linear layers become int8: "vit" (the image trunk) and/or "text" (the text encoder).
    reduce_range: 7-bit weights (recommended on CPUs without VNNI: AVX2 only).
    threads: ONNX Runtime intra-op threads; None = torch's thread count.
    limit_heap_growth: on glibc, fix malloc's mmap threshold at 4 MiB, process-wide. ONNX Runtime's per-call
        buffers otherwise fragment the heap: resident memory grows by gigabytes during the first image at the
        released size (then stays). Costs speed (every large buffer is a fresh mapping), so it is off by default.
    """

    parts: tuple[str, ...] = ("vit",)
    reduce_range: bool = True
    threads: Optional[int] = None
    limit_heap_growth: bool = False


_SHARED_ENV: Optional[bool] = None  # whether the process-wide thread pool and allocator are in use


def _onnxruntime():
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            f"the int8 CPU path needs onnxruntime and onnx ({e.name} is missing): pip install 'sam3kit[fast]'"
        ) from e
    return onnxruntime


def _shared_env(ort, threads: int) -> bool:
    """One thread pool for all the per-layer sessions (per-session pools would mean hundreds of threads, each
    with its own malloc arena). Possible only before ONNX Runtime's environment exists; otherwise each session
    gets its own pool."""
    global _SHARED_ENV
    if _SHARED_ENV is None:
        try:
            from onnxruntime.capi import _pybind_state

            _pybind_state.set_global_thread_pool_sizes(threads, 1)
            _SHARED_ENV = True
        except Exception as e:  # the environment exists already (another ONNX Runtime user)
            log.info("ONNX Runtime environment already created (%s): per-session thread pools", e)
            _SHARED_ENV = False
    return _SHARED_ENV


def quantize_weight(weight: Tensor, reduce_range: bool = True) -> tuple[Tensor, Tensor]:
    """Symmetric per-output-channel int8 quantization.

    Args:
        weight: (out, in) float.
    Returns:
        q (in, out) int8 (transposed for ``x @ q``), scale (out,) float32, with ``weight ~ (q * scale).T``.
    """
    qmax = 63.0 if reduce_range else 127.0
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / qmax).clamp_min(1e-12)
    q = torch.round(w / scale[:, None]).clamp(-qmax, qmax).to(torch.int8)
    return q.t().contiguous(), scale


def _gemm_session(q: Tensor, scale: Tensor, bias: Optional[Tensor], threads: int):
    """An ONNX Runtime session computing ``Y = dequant(quant(A) @ q) + bias`` for A (N, in) float32."""
    ort = _onnxruntime()
    from onnx import TensorProto, helper, numpy_helper

    k, n = q.shape
    inits = [numpy_helper.from_array(q.numpy(), "B"), numpy_helper.from_array(scale.numpy(), "b_scale"),
             numpy_helper.from_array(torch.zeros(n, dtype=torch.int8).numpy(), "b_zero_point")]
    inputs = ["A", "B", "b_scale", "b_zero_point"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias.detach().float().contiguous().numpy(), "bias"))
        inputs.append("bias")
    node = helper.make_node("DynamicQuantizeMatMul", inputs, ["Y"], domain="com.microsoft")
    graph = helper.make_graph([node], "int8_linear", [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["N", k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", n])], inits)
    proto = helper.make_model(graph, ir_version=8,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    so = ort.SessionOptions()
    if _shared_env(ort, threads):
        so.use_per_session_threads = False
    else:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle pools must not steal cores
    so.enable_cpu_mem_arena = False  # an arena per session would keep its largest buffers (GBs over the model)
    so.enable_mem_pattern = False  # likewise a planned block per session
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


class Int8Linear(nn.Module):
    """Drop-in for ``nn.Linear`` on the CPU: int8 weights (per output channel), dynamic uint8 activations.

    Input (..., in) float; output (..., out) in the input's dtype. The int8 weight, its scales and the fp32 bias
    live in the ONNX Runtime session only (one copy; nothing in ``state_dict``).
    """

    def __init__(self, linear: nn.Linear, *, reduce_range: bool = True, threads: Optional[int] = None) -> None:
        super().__init__()
        if linear.weight.device.type != "cpu":
            raise InputError("the int8 path runs on the CPU; load the model with device='cpu' (on CUDA use "
                             "dtype='bf16' or 'fp16')")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        q, scale = quantize_weight(linear.weight, reduce_range)
        self._session = _gemm_session(q, scale, linear.bias, threads or torch.get_num_threads())

    block_rows = 2592
    """The blocked MLP step of ``sam3kit.speed.blocked_mlp`` runs these layers in blocks of at least this many
    rows: ONNX Runtime's per-call work (quantizing the activations, its thread pool) makes smaller calls slower per
    row, and one call for all rows needs the full-size hidden activation."""

    def forward(self, x: Tensor, out: Optional[Tensor] = None) -> Tensor:
        """x (..., in) -> (..., out) in x's dtype; or, with ``out`` (N, out_features) float32 contiguous, N the
        number of rows of x, written into ``out`` (no allocation) and ``out`` returned."""
        shape = x.shape
        a = x.detach().reshape(-1, self.in_features).to(torch.float32).contiguous()
        if out is None:
            y = torch.empty(a.shape[0], self.out_features, dtype=torch.float32)
        elif (out.dtype != torch.float32 or not out.is_contiguous() or out.device.type != "cpu"
              or tuple(out.shape) != (a.shape[0], self.out_features)):
            raise InputError(f"out must be a contiguous float32 CPU tensor of shape ({a.shape[0]}, "
                             f"{self.out_features}), got {out.dtype} {tuple(out.shape)}")
        else:
            y = out
        io = self._session.io_binding()  # ONNX Runtime reads and writes torch's memory: no copies, no allocations
        io.bind_input("A", "cpu", 0, np.float32, list(a.shape), a.data_ptr())
        io.bind_output("Y", "cpu", 0, np.float32, list(y.shape), y.data_ptr())
        self._session.run_with_iobinding(io)
        return y if out is not None else y.view(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def swap_linears(module: nn.Module, **kwargs) -> int:
    """Replace every ``nn.Linear`` under ``module`` by an ``Int8Linear``, in place; returns how many."""
    count = 0
    for name, child in list(module.named_children()):
        if type(child) is nn.Linear:
            setattr(module, name, Int8Linear(child, **kwargs))
            release_mapped([child.weight])  # the fp32 pages read while quantizing go back to the page cache
            count += 1
        else:
            count += swap_linears(child, **kwargs)
    return count


def quantize_int8(model: nn.Module, options: Int8Options = Int8Options()) -> nn.Module:
    """Make the Linear layers of ``options.parts`` of a ``Sam3Model`` int8, in place; returns ``model``.

    The fp32 weights of the swapped layers are released. ``model.fingerprint`` gets an ``|int8`` suffix so that
    image-encoding caches never mix int8 and fp32 encodings. The model must be fp32 on the CPU.
    """
    _onnxruntime()
    unknown = set(options.parts) - set(PARTS)
    if unknown:
        raise InputError(f"unknown int8 parts {sorted(unknown)}; choose from {sorted(PARTS)}")
    if model.dtype != torch.float32 or model.device.type != "cpu":
        raise InputError(f"the int8 path needs an fp32 model on the CPU, got {model.dtype} on {model.device}")
    if options.limit_heap_growth:
        _limit_heap_growth()
    for part in options.parts:
        swap_linears(model.get_submodule(PARTS[part]), reduce_range=options.reduce_range, threads=options.threads)
    model.fingerprint = f"{model.fingerprint}|int8:{','.join(sorted(options.parts))}:{'r' if options.reduce_range else 'f'}"
    return model



_M_MMAP_THRESHOLD = -3  # mallopt parameter number (glibc malloc.h)


def _limit_heap_growth(threshold: int = 4 << 20) -> bool:
    """Fix glibc's mmap threshold: allocations above it are mapped, and unmapped (returned) when freed."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
    log.info("glibc mmap threshold set to %d bytes (int8 limit_heap_growth)", threshold)
    return ok
