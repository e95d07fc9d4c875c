"""The model flags of the commands that run SAM 3 (``--model``, ``--device``, ``--dtype``, ``--fast``,
``--image-size``, ``--threads``, ``--cache``), the checkpoint's identity for the skip check, and loading the model
they name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from .inputs import parse_threads


def add_model_argument(parser: argparse.ArgumentParser, *, onnx: bool = False) -> None:
    """``-m/--model``: the checkpoint (with ``onnx``, an ONNX export folder too)."""
    what = "checkpoint: a folder, model.safetensors, sam3.pt or a Hugging Face Hub id"
    if onnx:
        what += "; or a folder of 'sam3kit export onnx' (runs through ONNX Runtime, no PyTorch needed)"
    parser.add_argument("-m", "--model", default="facebook/sam3", help=what)


def add_runtime_arguments(parser: argparse.ArgumentParser, *, cache: bool = True) -> None:
    """The "runtime" group: ``--device``, ``--dtype``, ``--fast``, ``--image-size``, ``--threads`` and, with
    ``cache``, ``--cache``."""
    r = parser.add_argument_group("runtime")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps; auto = cuda if available, else cpu")
    r.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16"),
                   help="weights and compute dtype (fp16/bf16 are meant for GPUs)")
    r.add_argument("--fast", default="none", choices=("none", "int8"),
                   help="int8: int8 Linear layers in the image encoder on the CPU (faster, slightly less exact; "
                        "needs sam3kit[fast]); none: the exact model")
    r.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="run the model at N x N pixels instead of the checkpoint's 1008 (a multiple of 336; "
                        "faster, less accurate)")
    r.add_argument("--threads", type=parse_threads, default=None, metavar="N",
                   help="CPU threads for PyTorch (intra- and inter-op; default: PyTorch's choice, usually one per "
                        "core). Fewer threads can be faster on a busy machine")
    if not cache:
        return
    r.add_argument("--cache", default=None, metavar="DIR",
                   help="keep image encodings in DIR: a later run on the same image (other prompts) reads the "
                        "encoding instead of running the image encoder again")


def apply_threads(n: Optional[int]) -> None:
    """``--threads N``: PyTorch's intra-op and inter-op thread counts (the inter-op count can only be set before
    PyTorch's first parallel work; later it stays as it is)."""
    if n is None:
        return
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set, or parallel work has started
        pass


def runtime_record(args: argparse.Namespace) -> dict[str, Any]:
    """The runtime flags that change a job's outputs, as recorded in its manifest (``--device`` does not)."""
    return {"dtype": args.dtype, "fast": args.fast, "image_size": args.image_size}


def model_identity(source: str, image_size: Optional[int] = None) -> dict[str, Any]:
    """What identifies the weights for the skip check: ``{"source": ..., "fingerprint": ...}``.

    For a local checkpoint the fingerprint is its content fingerprint (``weights.fingerprint``: file sizes,
    headers and sampled blocks, and the architecture; the one ``sam3kit.load`` gives ``model.fingerprint``), read
    without loading the model, so a touched, copied or differently named checkpoint (``-m DIR`` or
    ``-m DIR/model.safetensors``) is the same model. For a Hub id, or a checkpoint whose fingerprint cannot be read
    here (loading will say why), it is None and the command records ``model.fingerprint`` once it has loaded the
    model (``jobs.settle_model``).
    """
    p = Path(source).expanduser()
    if not p.exists():
        return {"source": source, "fingerprint": None}
    try:
        from ..weights.fingerprint import checkpoint_fingerprint

        fingerprint = checkpoint_fingerprint(p, image_size=image_size)
    except Exception:  # noqa: BLE001 - any problem of the checkpoint is reported by loading it
        fingerprint = None
    return {"source": str(p.resolve()), "fingerprint": fingerprint}


def load_model(args: argparse.Namespace, device: str, reporter: Any = None):
    """``sam3kit.load`` with the flags of ``args`` on ``device`` (from ``resolve_device``); ``reporter``
    (``report.Reporter``) shows it as the current stage.

    A bad ``--image-size``, or ``--fast`` without its extra installed, is a user mistake (``InputError``).
    """
    import sam3kit

    from ..errors import InputError

    if reporter is not None:
        reporter.stage(f"loading {args.model} on {device} ({args.dtype})")
    try:
        return sam3kit.load(args.model, device=device, dtype=args.dtype, image_size=args.image_size,
                            fast=None if args.fast == "none" else args.fast)
    except (ValueError, ImportError) as e:
        raise InputError(str(e)) from e
