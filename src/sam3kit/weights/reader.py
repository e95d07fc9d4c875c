"""Open a checkpoint on disk without loading it: a lazy name -> tensor view over safetensors or ``.pt`` files."""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch import Tensor

from ..errors import CheckpointError

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
OFFICIAL_NAME = "sam3.pt"
CONFIG_NAME = "config.json"


@dataclass
class CheckpointFiles:
    """Where the pieces of one checkpoint are: weight files (one, or shards), an optional ``config.json``."""

    weights: list[Path]
    config: Optional[Path]
    format: str  # "safetensors" or "pt"
    root: Path = field(default=Path("."))


def locate(path: Path) -> CheckpointFiles:
    """Find the weight and config files of a directory or file checkpoint."""
    if path.is_dir():
        cfg = path / CONFIG_NAME if (path / CONFIG_NAME).is_file() else None
        if (path / SAFETENSORS_NAME).is_file():
            return CheckpointFiles([path / SAFETENSORS_NAME], cfg, "safetensors", path)
        if (path / SAFETENSORS_INDEX).is_file():
            try:
                index = json.loads((path / SAFETENSORS_INDEX).read_text())
                shards = sorted(set(index["weight_map"].values()))
            except (ValueError, KeyError) as e:
                raise CheckpointError(f"{path / SAFETENSORS_INDEX} is not a valid safetensors index: {e}") from e
            missing = [s for s in shards if not (path / s).is_file()]
            if missing:
                raise CheckpointError(f"{path} lists shards that are not there: {missing}. Download them again.")
            return CheckpointFiles([path / s for s in shards], cfg, "safetensors", path)
        if (path / OFFICIAL_NAME).is_file():
            return CheckpointFiles([path / OFFICIAL_NAME], cfg, "pt", path)
        found = sorted(p.name for p in path.iterdir())[:10]
        raise CheckpointError(
            f"{path} holds no SAM 3 weights: expected {SAFETENSORS_NAME} (Hugging Face facebook/sam3) or "
            f"{OFFICIAL_NAME} (official checkpoint); found {found}")
    if path.is_file():
        cfg = path.parent / CONFIG_NAME
        cfg = cfg if cfg.is_file() else None
        if path.suffix == ".safetensors":
            return CheckpointFiles([path], cfg, "safetensors", path.parent)
        if path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
            return CheckpointFiles([path], cfg, "pt", path.parent)
        raise CheckpointError(f"{path}: unknown checkpoint type {path.suffix!r}; expected .safetensors or .pt")
    raise CheckpointError(f"{path}: no such file or directory")


class TensorSource:
    """Read-only mapping name -> tensor over the weight files, reading a tensor only when asked."""

    def __init__(self, files: CheckpointFiles) -> None:
        self.files = files
        self._where: dict[str, object] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._dtypes: dict[str, str] = {}
        if files.format == "safetensors":
            from safetensors import safe_open

            for f in files.weights:
                mapped = _map_safetensors(f)
                if mapped is not None:  # every tensor's bytes were checked to lie inside the file
                    for k, (t, dtype) in mapped.items():
                        self._where[k] = t
                        self._shapes[k] = tuple(t.shape)
                        self._dtypes[k] = dtype
                    continue
                try:
                    handle = safe_open(str(f), framework="pt")
                    for k in handle.keys():
                        sl = handle.get_slice(k)
                        self._where[k] = handle
                        self._shapes[k] = tuple(sl.get_shape())
                        self._dtypes[k] = str(sl.get_dtype())
                except CheckpointError:
                    raise
                except Exception as e:  # safetensors raises its own error type for truncated/corrupt headers
                    raise CheckpointError(
                        f"{f} is not a readable safetensors file ({_first_line(e)}). It may be truncated or "
                        "corrupt: download it again.", details=_plain_lines(e)) from e
                _check_size(f)
        else:
            f = files.weights[0]
            try:
                sd = torch.load(str(f), map_location="cpu", mmap=True, weights_only=True)
            except pickle.UnpicklingError as e:
                refused = _refused_pickle(f, e)
                if refused is not None:
                    raise refused from e
                raise CheckpointError(
                    f"{f} is not a readable PyTorch checkpoint ({_first_line(e)}). It may be truncated or corrupt, "
                    "or not a checkpoint at all.", details=_plain_lines(e)) from e
            except Exception as e:
                raise CheckpointError(
                    f"{f} is not a readable PyTorch checkpoint ({type(e).__name__}: {_first_line(e)}). It may be "
                    "truncated or corrupt, or not a checkpoint at all.", details=_plain_lines(e)) from e
            if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
                sd = sd["model"]
            if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
                raise CheckpointError(f"{f} does not hold a flat state dict of tensors (as sam3.pt does)")
            self._tensors = sd
            for k, v in sd.items():
                self._where[k] = sd
                self._shapes[k] = tuple(v.shape)
                self._dtypes[k] = str(v.dtype).replace("torch.", "")

    def keys(self) -> list[str]:
        return list(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def dtype(self, key: str) -> str:
        return self._dtypes[key]

    def __getitem__(self, key: str) -> Tensor:
        src = self._where[key]
        if isinstance(src, Tensor):
            return src
        if isinstance(src, dict):
            return src[key]
        try:
            return src.get_tensor(key)
        except Exception as e:
            raise CheckpointError(f"tensor {key!r} cannot be read ({_first_line(e)}); the file may be truncated or "
                                  "corrupt") from e

    def items(self) -> Iterator[tuple[str, Tensor]]:
        for k in self._where:
            yield k, self[k]


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain_lines(e: BaseException) -> list[str]:
    """The lines of a library's message, without terminal colour codes or blank lines."""
    return [line.strip() for line in _ANSI.sub("", str(e)).splitlines() if line.strip()]


def _first_line(e: BaseException) -> str:
    lines = _plain_lines(e)
    return lines[0] if lines else type(e).__name__


def _refused_pickle(f: Path, e: BaseException) -> Optional[CheckpointError]:
    """When torch's ``weights_only`` unpickler refused an object of the file (its message: several lines with
    terminal colour codes): one line that says what and why, the library's text in ``details``. None when the
    error is another one (a corrupt file also ends as an ``UnpicklingError``)."""
    text = _ANSI.sub("", str(e))
    m = (re.search(r"GLOBAL (\S+) was not an allowed global", text) or re.search(r"whose module (\S+) is blocked", text)
         or re.search(r"(\S+) must be \S+ to load", text))
    if m is None:
        return None
    return CheckpointError(
        f"{f} holds pickled Python objects besides tensors ({m.group(1)}), which sam3kit refuses to unpickle: "
        "unpickling can run code (sam3kit reads .pt files with torch.load(weights_only=True)). Save the state dict "
        "alone (torch.save(model.state_dict(), path)), or convert it to safetensors where you trust its source.",
        details=_plain_lines(e))


_SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                       "BOOL": torch.bool}


def _map_safetensors(f: Path) -> Optional[dict[str, tuple[Tensor, str]]]:
    """Every tensor of a safetensors file as a view of one private (copy-on-write) memory map of the file: the
    header is parsed here and no data is read (opening each tensor through ``safetensors`` costs a call per tensor).
    Returns None when the file is not in the plain form this handles (unknown dtype, a tensor whose offset is not
    a multiple of its element size, anything unexpected in the header): the caller then uses ``safetensors``."""
    import struct
    import sys

    if sys.byteorder != "little":  # the file's data is little-endian: let the library convert it
        return None
    try:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > size - 8:
                return None
            header = json.loads(fh.read(n))
        storage = torch.UntypedStorage.from_file(str(f), shared=False, nbytes=size)
        out: dict[str, tuple[Tensor, str]] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
            if dtype is None:
                return None
            begin, end = info["data_offsets"]
            shape = [int(d) for d in info["shape"]]
            item = torch.empty(0, dtype=dtype).element_size()
            numel = 1
            for d in shape:
                numel *= d
            offset = 8 + n + begin
            if offset % item or end - begin != numel * item or 8 + n + end > size:
                return None
            out[name] = (torch.empty(0, dtype=dtype).set_(storage, offset // item, shape), info["dtype"])
        return out
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, struct.error):
        return None


def _check_size(f: Path) -> None:
    """A safetensors file whose data ends before its header says is truncated: refuse it up front."""
    import struct

    with open(f, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{f} is truncated (no safetensors header)")
        (n,) = struct.unpack("<Q", head)
        header = json.loads(fh.read(n))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    size = f.stat().st_size
    if size < 8 + n + end:
        raise CheckpointError(
            f"{f} is truncated: the header describes {8 + n + end} bytes but the file has {size}. Download it again.")
