"""The model flags of the commands that run SAM 3 (``--model``, ``--device``, ``--dtype``, ``--fast``,
``--image-size``), the checkpoint's identity for the skip check, and loading the model they name."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``-m/--model``: the checkpoint."""
    parser.add_argument("-m", "--model", default="facebook/sam3",
                        help="checkpoint: a folder, model.safetensors, sam3.pt or a Hugging Face Hub id")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """The "runtime" group: ``--device``, ``--dtype``, ``--fast``, ``--image-size``."""
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


def runtime_record(args: argparse.Namespace) -> dict[str, Any]:
    """The runtime flags that change a job's outputs, as recorded in its manifest (``--device`` does not)."""
    return {"dtype": args.dtype, "fast": args.fast, "image_size": args.image_size}


def model_identity(source: str) -> dict[str, Any]:
    """What identifies the weights for the skip check: path, size and time of the checkpoint's files (a folder's
    top-level files; a file and the config.json beside it); a Hub id as given."""
    p = Path(source).expanduser()
    if not p.exists():
        return {"source": source}
    if p.is_dir():
        paths = sorted(f for f in p.iterdir() if f.is_file())
    else:
        paths = [p] + ([p.parent / "config.json"] if (p.parent / "config.json").is_file() else [])
    return {"source": str(p.resolve()),
            "files": [{"name": f.name, "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in paths]}


def load_model(args: argparse.Namespace, device: str):
    """``sam3kit.load`` with the flags of ``args`` on ``device`` (from ``resolve_device``).

    A bad ``--image-size``, or ``--fast`` without its extra installed, is a user mistake (``InputError``).
    """
    import sam3kit

    from ..errors import InputError

    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        sys.stderr.write(f"loading {args.model} on {device} ({args.dtype}) ...\n")
    try:
        return sam3kit.load(args.model, device=device, dtype=args.dtype, image_size=args.image_size,
                            fast=None if args.fast == "none" else args.fast)
    except (ValueError, ImportError) as e:
        raise InputError(str(e)) from e
