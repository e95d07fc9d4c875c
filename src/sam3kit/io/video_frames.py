"""Videos given as separate images: a folder of frame files, a list of frames, or a stream (any iterator).

Each frame is decoded with ``load_image`` (so EXIF orientation, grayscale, RGBA, 16-bit and float images and torch
tensors are handled as for single images) when it is asked for, never when the source is opened; only the first
frame is read at open, to know the frame size.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..errors import ImageError, InputError
from .image import load_image
from .video_source import EndOfVideo, FrameSource

logger = logging.getLogger(__name__)

_DIGITS = re.compile(r"(\d+)")


def frame_order_key(name: str):
    """Sort key for frame file names: numbers by value (``2.jpg`` before ``10.jpg``), then by name."""
    parts = _DIGITS.split(name)  # text at even positions, digit runs at odd ones: lists always compare
    return [int(p) if k % 2 else p.lower() for k, p in enumerate(parts)], name


# Extensions Pillow registers that are videos or animations (Pillow would read only their first picture)
_MOVING_EXTS = {".mpg", ".mpeg", ".fli", ".flc"}
# ... and those FFmpeg reads as videos, which a video path may have
_ANIMATED_EXTS = {".gif", ".apng"}


def _image_extensions() -> set[str]:
    """Extensions of the still-image formats Pillow reads (what counts as a frame file in a folder)."""
    from PIL import Image

    return {ext.lower() for ext in Image.registered_extensions()} - _MOVING_EXTS


def still_image_extension(path: Path) -> bool:
    """Whether ``path`` is named as a single still image (a path that cannot be a video)."""
    return path.suffix.lower() in _image_extensions() - _ANIMATED_EXTS


def list_frame_files(folder: Path) -> list[Path]:
    """The image files of ``folder`` in frame order. Hidden entries (``.name``) are skipped; other files and
    sub-folders are skipped with a log line. Raises ``ImageError`` when no image is left."""
    image_exts = _image_extensions()
    frames, others = [], []
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        raise ImageError(f"{folder}: cannot list the folder ({e.strerror or e})") from e
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and os.path.splitext(entry.name)[1].lower() in image_exts:
            frames.append(entry.name)
        else:
            others.append(entry.name + ("/" if entry.is_dir() else ""))
    others.sort(key=frame_order_key)
    if not frames:
        if not others:
            raise ImageError(f"{folder}: the folder is empty; expected image files named in frame order "
                             "(0.jpg, 1.jpg, ...)")
        raise ImageError(f"{folder}: no image files in the folder (found {_some(others)}); expected image files "
                         "(JPEG, PNG, WebP, ...) named in frame order (0.jpg, 1.jpg, ...)")
    if others:
        logger.info("%s: %d entries that are not image files skipped: %s", folder, len(others), _some(others))
    frames.sort(key=frame_order_key)
    return [folder / name for name in frames]


def _some(names: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _load_frame(item: Any, index: int, what: str, max_pixels: Optional[int]) -> np.ndarray:
    """Decode one frame (the array may share memory with ``item``: sources hand out copies)."""
    try:
        return load_image(item, max_pixels=max_pixels)
    except (ImageError, InputError) as e:
        raise type(e)(f"{what}: frame {index}: {e}", details=e.details) from e


class FrameList(FrameSource):
    """Random access to frames given as a sequence: paths, PIL images, arrays or tensors (mixed freely).

    A folder is the list of its image files. The last frame served is kept, so asking for it again (a prompt on
    a frame, then propagation from it) does not decode it twice.
    """

    def __init__(self, items: Sequence[Any], *, name: str, max_pixels: Optional[int], what: Optional[str] = None):
        super().__init__(name)
        self._what = what or name
        self._items = tuple(items)
        if not self._items:
            raise ImageError(f"{self._what}: the list of frames is empty; expected at least one frame "
                             "(a path, a PIL image or an (H, W, 3) uint8 array)")
        self._max_pixels = max_pixels
        self.num_frames = len(self._items)
        self._last: Optional[tuple[int, np.ndarray]] = None
        self._last = (0, self._load(0))

    def _load(self, index: int) -> np.ndarray:
        arr = _load_frame(self._items[index], index, self._what, self._max_pixels)
        self._check_frame(arr, index, self._what, self._max_pixels)
        return arr

    def _frame(self, index: int) -> np.ndarray:
        if self._last is None or self._last[0] != index:
            self._last = (index, self._load(index))
        return self._last[1].copy()

    def _release(self) -> None:
        self._items = ()
        self._last = None


class FrameStream(FrameSource):
    """Frames pulled from an iterator only when asked for, in order.

    ``frame(i)`` serves the next unread frame (pulling and dropping any frames before it) or one of the last
    ``lookback`` frames pulled; an older frame raises ``InputError``. Past the end it raises ``EndOfVideo`` and
    ``num_frames`` becomes known. ``close()`` closes the iterator when it can be closed (a generator).
    """

    is_stream = True

    def __init__(self, iterator: Iterator[Any], *, lookback: int, max_pixels: Optional[int], name: str = "stream"):
        super().__init__(name)
        self._it: Optional[Iterator[Any]] = iterator
        self._max_pixels = max_pixels
        self._window: deque[tuple[int, np.ndarray]] = deque(maxlen=lookback)
        self._next = 0  # the index of the next frame the iterator will give
        if not self._pull():
            raise ImageError("the frame stream is empty: its iterator gave no frame")

    @property
    def lookback(self) -> int:
        return self._window.maxlen

    def _pull(self) -> bool:
        """Read the next frame into the window; False (and ``num_frames`` set) at the end of the stream."""
        if self._it is None:
            return False
        try:
            item = next(self._it)
        except StopIteration:
            self.num_frames = self._next
            self._it = None
            return False
        index = self._next
        self._next += 1  # a frame that fails to decode still takes its index
        arr = _load_frame(item, index, self.name, self._max_pixels)
        self._check_frame(arr, index, self.name, self._max_pixels)
        self._window.append((index, arr))
        return True

    def _frame(self, index: int) -> np.ndarray:
        while self._next <= index:
            if not self._pull():
                raise EndOfVideo(f"frame {index} is past the end of the stream: it had {self.num_frames} frames")
        for i, arr in self._window:
            if i == index:
                return arr.copy()
        held = (f"frames {self._window[0][0]}..{self._window[-1][0]}" if len(self._window) > 1
                else f"frame {self._window[0][0]}" if self._window else "no frame")
        raise InputError(f"frame {index} is no longer held: a stream keeps only its last {self.lookback} "
                         f"frame(s) ({held} now); open it with a larger lookback, or pass a video file, a folder "
                         "or a list for random access")

    def _release(self) -> None:
        close = getattr(self._it, "close", None)
        self._it = None
        self._window.clear()
        if callable(close):
            close()


def check_lookback(lookback: Any) -> int:
    if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 1:
        raise InputError(f"lookback must be a whole number of frames >= 1, got {lookback!r}")
    return int(lookback)
