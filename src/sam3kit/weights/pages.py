"""Give back the resident pages of memory-mapped weights that a request no longer needs.

Weights loaded from a file stay views of a private (copy-on-write) memory map of it (``weights.reader``), so the
pages a forward pass touched count in the process's resident memory until the process ends, although the kernel
could read them again from its page cache. ``release_mapped`` drops them with ``madvise(MADV_DONTNEED)``; the next
use faults them back in from the page cache (a minor fault per page), not from
disk. A page that was written since mapping (an in-place edit of a weight made a private copy of it) would go
back to the file's contents under MADV_DONTNEED, so every range is first checked in ``/proc/self/pagemap``, and a
tensor with any such page is left alone. Linux only; elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import sys
from collections.abc import Iterable
from typing import Optional

import numpy as np
from torch import Tensor

log = logging.getLogger(__name__)

_MADV_DONTNEED = 4
_PRESENT = np.uint64(1 << 63)
_FILE_OR_SHARED = np.uint64(1 << 61)


def _page_range(t: Tensor) -> Optional[tuple[int, int]]:
    """The whole pages [start, end) inside ``t``'s bytes (CPU tensors). Whether they are file pages is read from
    the page map: anonymous memory (weights held in RAM) shows as written and is never released."""
    if t.device.type != "cpu" or t.numel() == 0:
        return None
    page = mmap.PAGESIZE
    begin = t.data_ptr()
    end = begin + t.numel() * t.element_size()
    start, stop = -(-begin // page) * page, end // page * page  # only pages that lie wholly inside the tensor
    return (start, stop) if stop > start else None


def release_mapped(tensors: Iterable[Tensor]) -> int:
    """Drop the resident pages of the file-mapped, unmodified ``tensors``; returns the number of bytes released.

    Tensors that are not views of a mapped file (in-memory weights, converted dtypes, GPU tensors) are skipped,
    and so is any tensor with a page written since mapping (see the module docstring).
    """
    if not sys.platform.startswith("linux"):
        return 0
    ranges = sorted({r for r in (_page_range(t) for t in tensors) if r is not None})
    if not ranges:
        return 0
    page = mmap.PAGESIZE
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pagemap = open("/proc/self/pagemap", "rb")
    except OSError as e:  # no pagemap (restricted /proc): keep everything resident
        log.debug("cannot release mapped weights: %s", e)
        return 0
    released = 0
    with pagemap:
        for start, stop in ranges:
            pagemap.seek(start // page * 8)
            entries = np.frombuffer(pagemap.read((stop - start) // page * 8), dtype=np.uint64)
            if len(entries) != (stop - start) // page:
                continue
            written = (entries & _PRESENT).astype(bool) & ~(entries & _FILE_OR_SHARED).astype(bool)
            if written.any():  # a private copy of some page exists: releasing would lose it
                continue
            resident = int((entries & _PRESENT).astype(bool).sum())
            if resident and libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(stop - start), _MADV_DONTNEED) == 0:
                released += resident * page
    return released
