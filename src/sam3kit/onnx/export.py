"""``export_onnx``: a loaded model -> an export folder of ONNX graphs split at the cache boundaries.

The graphs are traced from the plain model (``graphs.py``; the CPU speed swaps of ``sam3kit.speed`` must not be
applied: load with ``fast=SpeedOptions(cpu_kernels=False)``, as ``sam3kit export onnx`` does) with PyTorch's
TorchScript-based exporter. Each graph is then given the exact input and output shapes of the contract
(``contract.py``), checked to hold no control-flow node (``If``, ``Loop``, ``Scan``), and saved, with its weights
in ``<file>.data`` beside it when it would pass protobuf's 2 GB. The tokenizer files, the int8 / fp16 variants
(``variants.py``) and, last, ``manifest.json`` follow.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..errors import InputError, OutputError
from ..model.sam3 import Sam3Model
from .attention import MAX_SCORES, chunked_attention
from .contract import (DEFAULT_OPSET, EXTERNAL_DATA_LIMIT, GRAPHS, INT8_GRAPHS, MANIFEST_NAME, MAX_OPSET,
                       MIN_OPSET, GraphSpec, ModelDims, graph_file, graph_specs)
from .graphs import DetectorGraph, PromptDecoderGraph, TextEncoderGraph, VisionEncoderGraph
from .manifest import file_record, manifest_data, write_manifest

log = logging.getLogger(__name__)

CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})


def export_onnx(model: Sam3Model, out_dir: Union[str, Path], *, opset: int = DEFAULT_OPSET, int8: bool = False,
                fp16: bool = False, source: Optional[str] = None, overwrite: bool = False,
                external_data_limit: int = EXTERNAL_DATA_LIMIT, max_attention_scores: int = MAX_SCORES) -> Path:
    """Export ``model`` into the folder ``out_dir``; returns the path of its ``manifest.json``.

    Args:
        model: a plain fp32 ``Sam3Model`` (``sam3kit.load(src, fast=SpeedOptions(cpu_kernels=False))``).
        opset: ONNX opset, 17 to 20.
        int8: also write ``vision_encoder_int8.onnx``: ONNX Runtime's dynamic quantization of the vision encoder's
            matrix products (7-bit symmetric per-channel weights, as ``sam3kit.speed.quantize_int8``).
        fp16: also write ``<graph>_fp16.onnx`` for every graph (fp16 weights and compute, float32 inputs and
            outputs; meant for GPU execution providers).
        source: the checkpoint's path or Hub id, recorded in the manifest.
        overwrite: replace an earlier export in ``out_dir`` (otherwise ``OutputError``).
        external_data_limit: graphs larger than this many bytes keep their weights in ``<file>.data``.
        max_attention_scores: the largest attention score block a graph holds per image, in elements; longer
            attentions run a block of queries at a time (``onnx.attention``: the same numbers, less memory).
    """
    _check_model(model)
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; OUT_DIR must be a folder (new or empty, or an earlier export with "
                          "--force)")
    if (out / MANIFEST_NAME).exists() and not overwrite:
        raise OutputError(f"{out} holds an export already ({MANIFEST_NAME}); pass overwrite=True (--force) to "
                          "replace it")
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # an interrupted re-export leaves no valid-looking folder

    dims = ModelDims.from_config(model.config)
    specs = graph_specs(dims)
    records: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        with chunked_attention(model, max_attention_scores):
            for name in GRAPHS:
                if name not in specs:
                    continue
                path = _export_graph(model, specs[name], dims, out, Path(tmp), opset, external_data_limit)
                records[name] = {"fp32": _record(path)}
                log.info("exported %s", path)
        if int8:
            from .variants import quantize_int8

            for name in INT8_GRAPHS:
                path = quantize_int8(out / graph_file(name), out / graph_file(name, "int8"), Path(tmp),
                                     external_data_limit)
                records[name]["int8"] = _record(path)
        if fp16:
            from .variants import convert_fp16

            for name in records:
                path = convert_fp16(out / graph_file(name), out / graph_file(name, "fp16"), external_data_limit)
                records[name]["fp16"] = _record(path)
    tokenizer = _write_tokenizer(model, out)
    data = manifest_data(dims, records, opset=opset, source=source, fingerprint=model.fingerprint,
                         tokenizer=tokenizer, config=model.config.to_hf_dict())
    return write_manifest(out, data)


def _check_model(model: Sam3Model) -> None:
    from ..speed.cpu import has_cpu_kernels

    if not isinstance(model, Sam3Model):
        raise InputError(f"export_onnx takes a Sam3Model (sam3kit.load), got {type(model).__name__}")
    if has_cpu_kernels(model):
        raise InputError("the model carries the CPU speed swaps of sam3kit.speed (sam3kit.load applies them on the "
                         "CPU): export the plain model, sam3kit.load(src, fast=SpeedOptions(cpu_kernels=False)) "
                         "(or sam3kit.speed.remove_cpu_kernels(model))")
    if any(type(m).__name__ == "Int8Linear" for m in model.modules()):
        raise InputError("the model is int8-quantized (sam3kit.speed.quantize_int8): export the fp32 model; "
                         "export(..., int8=True) writes an int8 vision encoder of its own")
    if model.dtype != torch.float32:
        raise InputError(f"export the fp32 model (got {model.dtype}); fp16=True writes fp16 graphs from it")


def _record(path: Path) -> dict[str, Any]:
    rec = file_record(path)
    data = path.with_name(path.name + ".data")
    rec["external_data"] = file_record(data) if data.exists() else None
    return rec


# ---------------------------------------------------------------------- tracing
def _sample_inputs(name: str, dims: ModelDims, model: Sam3Model) -> tuple[torch.Tensor, ...]:
    """Inputs to trace with: every dynamic axis at a size other than 0 and 1 where the graph allows it (batch 1:
    the tracer keeps it dynamic, see the tests), so that no size is mistaken for a constant."""
    dev = model.device
    S, g, d, t = dims.image_size, dims.grid_size, dims.detector_dim, dims.tracker_dim
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dev)

    det = (rand(1, d, 4 * g, 4 * g), rand(1, d, 2 * g, 2 * g), rand(1, d, g, g))
    if name == "vision_encoder":
        return (rand(1, 3, S, S).clamp(-1, 1),)
    if name == "text_encoder":
        return (torch.tensor([[49406, 320, 1929, 49407]], device=dev),)
    if name == "detector":
        boxes = torch.tensor([[[0.5, 0.5, 0.3, 0.2], [0.3, 0.4, 0.1, 0.1], [0.6, 0.6, 0.2, 0.3]]], device=dev)
        return (*det, rand(1, 4, d), torch.tensor([[False, False, False, True]], device=dev), boxes,
                torch.tensor([[1, 0, -1]], device=dev))
    s = float(S)
    points = torch.tensor([[[[0.1 * s, 0.2 * s], [0.3 * s, 0.4 * s], [0.5 * s, 0.5 * s]],
                            [[0.5 * s, 0.6 * s], [0.7 * s, 0.8 * s], [0.2 * s, 0.2 * s]]]], device=dev)
    boxes = torch.tensor([[[0.05 * s, 0.05 * s, 0.6 * s, 0.6 * s], [0.1 * s, 0.1 * s, 0.9 * s, 0.8 * s]]], device=dev)
    trk = (rand(1, t // 8, 4 * g, 4 * g), rand(1, t // 4, 2 * g, 2 * g), rand(1, t, g, g))
    return (points, torch.tensor([[[1, 0, 1], [1, 1, 0]]], device=dev), boxes, *trk,
            torch.zeros(1, 0, 4 * g, 4 * g, device=dev))


_WRAPPERS = {"vision_encoder": VisionEncoderGraph, "text_encoder": TextEncoderGraph, "detector": DetectorGraph,
             "prompt_encoder_mask_decoder": PromptDecoderGraph}


def _export_graph(model: Sam3Model, spec: GraphSpec, dims: ModelDims, out: Path, tmp: Path, opset: int,
                  limit: int) -> Path:
    """Trace one graph into ``tmp``, fix its interface to the contract, check it and save it into ``out``."""
    import onnx

    wrapper = _WRAPPERS[spec.name](model).eval()
    inputs = spec.inputs + spec.optional_inputs
    names_in = [s.name for s in inputs]
    names_out = [s.name for s in spec.outputs]
    dynamic = {s.name: {i: d for i, d in enumerate(s.dims) if isinstance(d, str)}
               for s in inputs + spec.outputs}
    work = tmp / spec.name
    work.mkdir()
    traced = work / spec.file_name()
    with torch.no_grad(), _argsort_symbolic(opset), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes the graph keeps dynamic on purpose
        torch.onnx.export(wrapper, _sample_inputs(spec.name, dims, model), str(traced), dynamo=False,
                          opset_version=opset, input_names=names_in, output_names=names_out, dynamic_axes=dynamic,
                          do_constant_folding=True)
    proto = onnx.load(str(traced))  # with any external data the exporter wrote beside it
    _apply_contract(proto, spec)
    _check_no_control_flow(proto.graph, spec.name)
    proto.metadata_props.add(key="sam3kit.graph", value=spec.name)
    from .. import __version__

    proto.metadata_props.add(key="sam3kit.version", value=__version__)
    dest = out / spec.file_name()
    save_model(proto, dest, limit)
    del proto
    shutil.rmtree(work, ignore_errors=True)  # the traced copy (as large as the graph)
    return dest


@contextlib.contextmanager
def _argsort_symbolic(opset: int):
    """``argsort(..., stable=True)`` (the geometry encoder's box order) as ONNX ``TopK``, whose ties keep the
    index order by definition; PyTorch's exporter has no symbolic for the stable overload."""
    from torch.onnx import symbolic_helper as sh

    def argsort(g, self, *args):  # aten::argsort(self, dim, descending) / argsort.stable(self, stable, dim, desc)
        dim = sh._maybe_get_const(args[-2], "i")
        descending = sh._maybe_get_const(args[-1], "b")
        size = g.op("Gather", g.op("Shape", self), g.op("Constant", value_t=torch.tensor([dim], dtype=torch.int64)))
        _, indices = g.op("TopK", self, size, axis_i=dim, largest_i=int(bool(descending)), sorted_i=1, outputs=2)
        return indices

    torch.onnx.register_custom_op_symbolic("aten::argsort", argsort, MIN_OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::argsort", MIN_OPSET)


def _apply_contract(proto, spec: GraphSpec) -> None:
    """Give the graph's inputs and outputs the contract's dtypes and dims (the tracer names some fixed sizes as
    dynamic ones), and make the optional inputs overridable initializers with an empty default."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    by_name = {s.name: s for s in spec.inputs + spec.optional_inputs + spec.outputs}
    types = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "bool": TensorProto.BOOL}
    for value in list(proto.graph.input) + list(proto.graph.output):
        s = by_name[value.name]
        tt = value.type.tensor_type
        if tt.elem_type != types[s.dtype]:
            raise AssertionError(f"{spec.name}: {value.name} traced as type {tt.elem_type}, contract {s.dtype}")
        if len(tt.shape.dim) != len(s.dims):
            raise AssertionError(f"{spec.name}: {value.name} traced with rank {len(tt.shape.dim)}, "
                                 f"contract {s.describe()}")
        for dim, want in zip(tt.shape.dim, s.dims):
            if isinstance(want, int):
                if dim.HasField("dim_value") and dim.dim_value != want:
                    raise AssertionError(f"{spec.name}: {value.name} traced as {tt.shape}, contract {s.describe()}")
                dim.dim_value = want
            else:
                dim.dim_param = want
    for s in spec.optional_inputs:
        default = np.zeros([1 if isinstance(d, str) and i == 0 else (0 if isinstance(d, str) else d)
                            for i, d in enumerate(s.dims)], dtype=np.float32)
        proto.graph.initializer.append(numpy_helper.from_array(default, s.name))


def _check_no_control_flow(graph, name: str) -> None:
    for node in graph.node:
        if node.op_type in CONTROL_FLOW:
            raise AssertionError(f"{name}: the traced graph holds a {node.op_type} node ({node.name}); the export "
                                 "must be free of data-dependent branches")
        for attr in node.attribute:
            if attr.g.node:
                _check_no_control_flow(attr.g, name)


def save_model(proto, dest: Path, limit: int) -> Path:
    """Save ``proto`` to ``dest``; its weights go to ``dest.data`` when the graph would pass ``limit`` bytes."""
    import onnx

    data = dest.with_name(dest.name + ".data")
    data.unlink(missing_ok=True)
    size = sum(len(t.raw_data) for t in proto.graph.initializer) + 4 * 1024 ** 2  # weights + the graph itself
    if size > limit:
        onnx.save_model(proto, str(dest), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
    else:
        onnx.save_model(proto, str(dest))
    return dest


def _write_tokenizer(model: Sam3Model, out: Path) -> dict[str, Any]:
    """The model's tokenizer (``model.tokenizer``, else the bundled CLIP vocabulary) as vocab.json + merges.txt."""
    from ..tokenizer import Sam3Tokenizer

    tok = model.tokenizer if model.tokenizer is not None else Sam3Tokenizer.default()
    files = tok.save_files(out)
    return {"files": [f.name for f in files], "context_length": tok.context_length, "start_id": tok.start_id,
            "end_id": tok.end_id, "pad_id": 0,
            "cleaning": "the official SimpleTokenizer: ftfy, HTML unescape twice, whitespace collapse, lowercase"}
