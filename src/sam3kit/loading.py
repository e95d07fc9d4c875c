"""``sam3kit.load``: a directory, a file or a Hugging Face Hub id -> a ready model (with its tokenizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import logging

import torch

from .config import Sam3Config
from .errors import CheckpointError, InputError
from .model.sam3 import Sam3Model
from .speed.options import SpeedOptions, apply_speed

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def parse_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """A ``torch.dtype`` from a dtype or its name ("fp32", "float16", "bf16", ...); InputError for anything else."""
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise InputError(f"unsupported dtype {dtype}; use float32, float16 or bfloat16")
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}; use one of fp32, fp16, bf16") from None


def resolve(source: Union[str, Path], *, token: Optional[str] = None, revision: Optional[str] = None) -> Path:
    """A local path for ``source``: an existing path as is, a hub id ("facebook/sam3") downloaded or cached.

    A name that is no local path but reads as a Hub id (``owner/name``, such as a mistyped ``ckpt/sam3``) goes to
    the Hub; if that fails too, the error says first that no such local path exists, then what the Hub said.
    """
    from .weights import hub

    p = Path(source).expanduser()
    if p.exists():
        return p
    if isinstance(source, str) and hub.looks_like_hub_id(source):
        try:
            return hub.download(source, revision=revision, token=token)
        except CheckpointError as e:
            raise CheckpointError(f"{source}: no such local file or folder; as a Hugging Face Hub id: {e}",
                                  details=e.details) from e
    raise CheckpointError(f"{source}: no such file or directory, and not a Hugging Face Hub id (owner/name)")


def resolve_device(device: Union[str, torch.device]) -> str:
    """The device to load on: ``"auto"`` is CUDA if available, else the CPU; any other name (or ``torch.device``)
    is returned as its name once checked against this machine.

    Raises ``InputError`` for a name torch does not know, or a CUDA / MPS device this machine does not have.
    """
    name = str(device)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"unknown device {name!r}: use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}: CUDA is not available here (torch {torch.__version__}); use cpu "
                             "or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {name!r}: there are {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"device {name!r}: MPS is not available here; use cpu or auto")
    return name


def load(source: Union[str, Path], *, device: Union[str, torch.device] = "cpu",
         dtype: Union[str, torch.dtype] = torch.float32, config: Optional[Sam3Config] = None,
         token: Optional[str] = None, revision: Optional[str] = None, image_size: Optional[int] = None,
         fast: Union[None, str, SpeedOptions] = None) -> Sam3Model:
    """Load SAM 3 strictly from a directory (HF ``facebook/sam3`` layout or ``Sam3Model.save_pretrained``), a
    ``.safetensors`` or official ``sam3.pt`` file, or a Hub id. The tokenizer files beside the weights (if any)
    are attached as ``model.tokenizer``.

    Args:
        device: where the weights go ("cpu", "cuda", "cuda:1", "mps", ...); "auto" = CUDA if available, else the
            CPU (``resolve_device``, the rule of the CLI's ``--device auto``).
        dtype: float32 (default), float16 or bfloat16 (half precision is meant for CUDA).
        config: architecture override; by default ``config.json`` beside the weights, else the released config.
        image_size: run at another input resolution, a multiple of 336 (README "Speed": faster, less accurate).
        fast: the speed features, a ``sam3kit.speed.SpeedOptions``. None (default) = ``SpeedOptions()``: on the
            CPU the CPU speed set (``sam3kit.speed.apply_cpu_kernels``: the same numbers up to rounding), elsewhere
            the plain model; ``SpeedOptions(cpu_kernels=False)`` keeps the plain model on the CPU too (for
            ``torch.compile`` or an exporter). "int8" = ``SpeedOptions(int8=True)``: int8 Linear layers in the ViT
            on the CPU (``sam3kit.speed.quantize_int8``; needs ``sam3kit[fast]``).
    """
    options = SpeedOptions.parse(fast)
    from .weights.fingerprint import weights_fingerprint
    from .weights.loader import load_model
    from .weights.reader import locate

    device = resolve_device(device)
    path = resolve(source, token=token, revision=revision)
    model = load_model(path, device=device, dtype=parse_dtype(dtype), config=config, image_size=image_size)
    files = locate(path)
    model.tokenizer = _find_tokenizer(files.root)
    model.fingerprint = weights_fingerprint(files.weights, model.config)
    return apply_speed(model, options)


def tokenizer_source(root: Path) -> tuple[str, list[str]]:
    """Which tokenizer ``load`` gives a checkpoint in ``root``: ("checkpoint", the files it reads) for its own
    ``tokenizer.json`` (or ``vocab.json`` + ``merges.txt``); ("bundled", []) for the bundled CLIP vocabulary, the
    file the official tokenizer loads (a bare ``sam3.pt``); ("incomplete", the files found) for a ``vocab.json``
    without ``merges.txt``, which ``load`` refuses."""
    if (root / "tokenizer.json").is_file():
        return "checkpoint", ["tokenizer.json"]
    if (root / "vocab.json").is_file():
        if (root / "merges.txt").is_file():
            return "checkpoint", ["vocab.json", "merges.txt"]
        return "incomplete", ["vocab.json"]
    return "bundled", []


def _find_tokenizer(root: Path):
    """The checkpoint's own tokenizer or the bundled CLIP vocabulary, as ``tokenizer_source`` says."""
    from .tokenizer import Sam3Tokenizer

    if tokenizer_source(root)[0] != "bundled":
        return Sam3Tokenizer.from_dir(root)  # "incomplete" raises the CheckpointError that names the missing file
    log.info("no tokenizer files in %s: using the bundled CLIP vocabulary", root)
    return Sam3Tokenizer.default()
