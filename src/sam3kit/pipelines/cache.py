"""Image-encoding cache: the ViT output of an image, reused across predictors, prompts and runs.

Entries are keyed by the decoded pixels (SHA-256 of the uint8 array and its shape), the model's fingerprint,
the dtype and the input resolution. The in-memory part is a bounded LRU; the optional on-disk part is a directory
of versioned safetensors files. A corrupt, truncated or stale disk entry is ignored (and rewritten), never fatal.

One cache may be shared by several predictors and threads: a lock guards the in-memory LRU and the counters, and
disk entries are written to a temporary file and renamed into place, so a reader never sees half an entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = "1"


def cache_key(image: np.ndarray, fingerprint: str, dtype: torch.dtype, resolution: int) -> str:
    """Key of one decoded image (H, W, 3) uint8 for a model (``Sam3Model.fingerprint``), dtype and input side."""
    h = hashlib.sha256()
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    h.update(f"|{fingerprint}|{dtype}|{resolution}|v{CACHE_FORMAT_VERSION}".encode())
    return h.hexdigest()


class EncodingCache:
    """LRU of image encodings (each (1, C, g, g)), optionally backed by a directory.

    Safe to share between threads. Two threads that miss the same key at once both compute it (the second
    ``put`` replaces the first with equal values); the encoder does not wait for another thread's work.

    Args:
        max_items: entries kept in memory (about 21 MB each at the released size in fp32); 0 disables memory.
        directory: where to persist entries across runs (``~`` is expanded); None keeps them in memory only.
    """

    def __init__(self, max_items: int = 8, directory: Optional[Union[str, Path]] = None) -> None:
        if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 0:
            raise InputError(f"max_items must be an int >= 0 (0 = no in-memory entries), got {max_items!r}")
        self.max_items = max_items
        self.directory = Path(directory).expanduser() if directory is not None else None
        self._mem: OrderedDict[str, Tensor] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._mem)

    @property
    def enabled(self) -> bool:
        """False for a cache that keeps nothing (``max_items=0`` and no directory): the encoder then skips hashing
        the images, which a video session (one encoding per frame, never read again) would pay on every frame."""
        return self.max_items > 0 or self.directory is not None

    def clear(self) -> None:
        """Forget the in-memory entries (disk entries stay)."""
        with self._lock:
            self._mem.clear()

    def get(self, key: str, *, device: torch.device, dtype: torch.dtype, shape: tuple[int, ...]) -> Optional[Tensor]:
        """The entry of ``key`` on ``device`` in ``dtype``, or None (counted as a miss). A disk entry must have
        ``shape`` and ``dtype``, else it is ignored."""
        with self._lock:
            t = self._mem.get(key)
            if t is not None:
                self._mem.move_to_end(key)
        if t is None and self.directory is not None:
            t = self._read(key, dtype, shape)  # outside the lock: other threads go on while the file is read
            if t is not None:
                self._remember(key, t)
        with self._lock:
            if t is None:
                self.misses += 1
            else:
                self.hits += 1
        return None if t is None else t.to(device=device, dtype=dtype)

    def put(self, key: str, value: Tensor) -> None:
        """Keep ``value`` (1, C, g, g) under ``key`` (in memory, and on disk with a directory)."""
        value = value.detach()
        self._remember(key, value)
        if self.directory is not None:
            self._write(key, value)

    def _remember(self, key: str, value: Tensor) -> None:
        if self.max_items == 0:
            return
        with self._lock:
            self._mem[key] = value
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_items:
                self._mem.popitem(last=False)

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.safetensors"

    def _read(self, key: str, dtype: torch.dtype, shape: tuple[int, ...]) -> Optional[Tensor]:
        from safetensors import safe_open

        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format_version") != CACHE_FORMAT_VERSION or meta.get("key") != key:
                    raise ValueError(f"stale entry (format {meta.get('format_version')!r})")
                t = f.get_tensor("encoding")
            if tuple(t.shape) != tuple(shape) or str(t.dtype) != str(dtype):
                raise ValueError(f"entry has shape {tuple(t.shape)} {t.dtype}, expected {tuple(shape)} {dtype}")
            return t
        except Exception as e:  # any unreadable entry is recomputed, never fatal
            log.warning("ignoring unusable cache entry %s: %s", path, e)
            return None

    def _write(self, key: str, value: Tensor) -> None:
        from safetensors.torch import save_file

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=str(self.directory))
            os.close(fd)
            try:
                save_file({"encoding": value.cpu().contiguous()}, tmp,
                          metadata={"format_version": CACHE_FORMAT_VERSION, "key": key})
                os.replace(tmp, self._path(key))
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as e:  # a full or read-only disk must not break inference
            log.warning("could not write cache entry for %s: %s", key[:12], e)
