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
    """A local path for ``source``: an existing path as is, a hub id ("facebook/sam3") downloaded or cached."""
    from .weights import hub

    p = Path(source).expanduser()
    if p.exists():
        return p
    if isinstance(source, str) and hub.looks_like_hub_id(source):
        return hub.download(source, revision=revision, token=token)
    raise CheckpointError(f"{source}: no such file or directory, and not a Hugging Face Hub id (owner/name)")


def load(source: Union[str, Path], *, device: Union[str, torch.device] = "cpu",
         dtype: Union[str, torch.dtype] = torch.float32, config: Optional[Sam3Config] = None,
         token: Optional[str] = None, revision: Optional[str] = None, image_size: Optional[int] = None,
         fast: Union[None, str, SpeedOptions] = None) -> Sam3Model:
    """Load SAM 3 strictly from a directory (HF ``facebook/sam3`` layout or ``Sam3Model.save_pretrained``), a
    ``.safetensors`` or official ``sam3.pt`` file, or a Hub id. The tokenizer files beside the weights (if any)
    are attached as ``model.tokenizer``.

    Args:
        device: where the weights go ("cpu", "cuda", "cuda:1", ...).
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
    from .weights.loader import load_model
    from .weights.reader import locate

    path = resolve(source, token=token, revision=revision)
    model = load_model(path, device=device, dtype=parse_dtype(dtype), config=config, image_size=image_size)
    files = locate(path)
    model.tokenizer = _find_tokenizer(files.root)
    model.fingerprint = _fingerprint(files.weights, model)
    return apply_speed(model, options)


def _fingerprint(files: list[Path], model: Sam3Model) -> str:
    """Weights identity for caches: the checkpoint files (path, size, mtime) and the configuration."""
    import hashlib

    h = hashlib.sha256(repr(model.config).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


def _find_tokenizer(root: Path):
    """The checkpoint's own tokenizer (``tokenizer.json``, or ``vocab.json`` + ``merges.txt``); a bare file such
    as ``sam3.pt`` gets the bundled CLIP vocabulary, which is the one the official tokenizer uses."""
    from .tokenizer import Sam3Tokenizer

    if any((root / name).is_file() for name in TOKENIZER_FILES):
        return Sam3Tokenizer.from_dir(root)
    log.info("no tokenizer files in %s: using the bundled CLIP vocabulary", root)
    return Sam3Tokenizer.default()
