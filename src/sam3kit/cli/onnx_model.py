"""``segment --model EXPORT_DIR``: the command on the graphs of ``sam3kit export onnx`` through
``sam3kit.onnx.OnnxPredictor``, with no PyTorch.

A ``--model`` folder holding the export's ``manifest.json`` is an export. The runtime flags map onto it:
``--fast int8`` runs the export's int8 vision encoder, ``--dtype fp16`` its fp16 graphs (both need the variants
written by ``--int8`` / ``--fp16`` at export time), ``--device`` picks the ONNX Runtime execution provider
(``auto``: CUDA where this onnxruntime build has it, else the CPU), ``--threads`` sets ONNX Runtime's intra-op
threads. What the graphs cannot do is refused before any image is read: another ``--image-size`` (the graphs run
at the export's size), ``--cache`` (encodings of the PyTorch model), ``--dtype bf16`` and ``--everything`` (not
exported yet).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def is_export(source: str) -> bool:
    """Whether ``--model`` names an ONNX export folder (one holding the export's ``manifest.json``)."""
    from ..onnx.contract import MANIFEST_NAME

    p = Path(source).expanduser()
    return p.is_dir() and (p / MANIFEST_NAME).is_file()


def precision(args: argparse.Namespace) -> str:
    """The graph variant the runtime flags ask for: "fp32", "int8" (``--fast int8``) or "fp16" (``--dtype fp16``)."""
    if args.dtype == "bf16":
        raise InputError("--dtype bf16: an ONNX export has fp32 graphs (and fp16 ones with --fp16 at export time); "
                         "use --dtype fp32 or fp16")
    if args.fast == "int8" and args.dtype == "fp16":
        raise InputError("--fast int8 and --dtype fp16 pick different graphs of the export: give one of them")
    return "int8" if args.fast == "int8" else ("fp16" if args.dtype == "fp16" else "fp32")


def check_flags(args: argparse.Namespace, prompts: list) -> None:
    """Refuse the flags and prompts an export cannot serve (``InputError``, before any image is read)."""
    if args.image_size is not None:
        raise InputError(f"--image-size {args.image_size}: the graphs of {args.model} run at the size they were "
                         "exported at; export again with a checkpoint at that size (sam3kit export onnx), or drop "
                         "--image-size")
    if getattr(args, "cache", None):
        raise InputError("--cache keeps encodings of the PyTorch model; it does not apply to an ONNX export: drop "
                         "--cache")
    if any(p.kind == "everything" for p in prompts):
        raise InputError("--everything is not available on an ONNX export yet: use the checkpoint as --model")
    precision(args)


def providers(device: str) -> Optional[list[Any]]:
    """ONNX Runtime providers for ``--device``: None (the CPU) for ``cpu``; the CUDA provider (with the CPU one
    behind it) for ``cuda`` / ``cuda:N``; ``auto`` = CUDA where this onnxruntime build has it."""
    from ..onnx.sessions import onnxruntime

    if device == "cpu":
        return None
    available = onnxruntime().get_available_providers()
    if device == "auto":
        return [CUDA, CPU] if CUDA in available else None
    name, _, index = device.partition(":")
    if name != "cuda" or (index and not index.isdigit()):
        raise InputError(f"--device {device}: an ONNX export runs on cpu, cuda, cuda:N or auto")
    if CUDA not in available:
        raise InputError(f"--device {device}: this onnxruntime build has no {CUDA} (it has {', '.join(available)}); "
                         "install onnxruntime-gpu, or use --device cpu")
    return [(CUDA, {"device_id": int(index or 0)}), CPU]


def identity(source: str, args: argparse.Namespace) -> dict[str, Any]:
    """The skip check's ``{"source", "fingerprint"}`` of an export: the fingerprint of the graphs the flags pick
    (``Manifest.fingerprint``), read from the manifest without opening a graph."""
    from ..onnx.contract import graph_variant
    from ..onnx.manifest import read_manifest

    m = read_manifest(Path(source))
    prec = precision(args)
    try:
        fingerprint = m.fingerprint({name: graph_variant(name, prec) for name in m.graph_names()})
    except KeyError:  # a variant that was not exported: opening the export says which
        fingerprint = None
    return {"source": str(m.root.resolve()), "fingerprint": fingerprint}


def load(args: argparse.Namespace, prompts: list, reporter: Any = None):
    """The ``OnnxPredictor`` of ``--model`` with the runtime flags; ``--point`` prompts need the tracker graph
    (``InputError`` for a detector-only export)."""
    from ..onnx.predictor import OnnxPredictor

    prec = precision(args)
    if reporter is not None:
        reporter.stage(f"opening the ONNX export {args.model} ({prec}, device {args.device})")
    predictor = OnnxPredictor(args.model, providers(args.device), precision=prec, threads=args.threads)
    if any(p.kind == "interactive" for p in prompts) and not predictor.has_tracker:
        raise InputError(f"{args.model} is a detector-only export: --point prompts need the tracker graph "
                         "(prompt_encoder_mask_decoder.onnx; export the full facebook/sam3 checkpoint)")
    return predictor
