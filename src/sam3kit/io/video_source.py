"""What every video source gives: ``FrameSource``, its index checks, and the errors a frame request can raise.

The kinds of source (a video file, a folder or list of frames, a stream) live in ``video_file.py`` and
``video_frames.py``; ``video.py`` picks one for what the user passed.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from typing import Iterator, Optional

import numpy as np

from ..errors import ImageError, InputError


class FrameOutOfRange(InputError, IndexError):
    """A frame index below 0 or past the last frame of the video."""


class EndOfVideo(FrameOutOfRange):
    """A stream was asked for a frame past its end. The source's ``num_frames`` is known from then on."""


class FrameSource:
    """The frames of one video, read on demand.

    Attributes:
        num_frames: the number of frames, or None for a stream whose end has not been reached yet.
        frame_size: (H, W) of every frame.
        is_stream: True when frames can only be read in order (an iterator), with a bounded look-back.
        name: a stem for output files (the file's stem, the folder's name, ``"frames"`` or ``"stream"``).
        fps: frames per second stated by a video file, else None.

    ``frame(index)`` returns an (H, W, 3) uint8 RGB array, C-contiguous, that the caller owns (changing it does
    not change what a later call returns). Frames are only decoded here; resizing and normalisation are the image
    encoder's, exactly as for single images. A source is safe to share between threads (one request at a time).
    """

    is_stream: bool = False

    def __init__(self, name: str):
        self.name = name
        self.num_frames: Optional[int] = None
        self.frame_size: tuple[int, int] = (0, 0)
        self.fps: Optional[float] = None
        self._lock = threading.RLock()
        self._closed = False

    # ----------------------------------------------------------------------------- public
    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based, presentation order): (H, W, 3) uint8 RGB, C-contiguous.

        Raises ``FrameOutOfRange`` (an ``InputError`` and ``IndexError``) past the last frame, ``EndOfVideo`` past
        the end of a stream, ``InputError`` for a frame a stream no longer holds or on a closed source, and
        ``ImageError`` for a frame that cannot be decoded or has another size than the first.
        """
        with self._lock:
            if self._closed:
                raise InputError(f"{self.name}: the video source is closed")
            return self._frame(self._check_index(index))

    def close(self) -> None:
        """Release the file or iterator. Idempotent; any later ``frame`` call raises ``InputError``."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every frame from the first, in order (a stream must not have gone past frame 0: ``InputError``)."""
        i = 0
        while self.num_frames is None or i < self.num_frames:
            try:
                yield self.frame(i)
            except EndOfVideo:
                return
            i += 1

    def __repr__(self) -> str:
        h, w = self.frame_size
        n = "unknown" if self.num_frames is None else self.num_frames
        state = ", closed" if self._closed else ""
        return f"{type(self).__name__}({self.name!r}, num_frames={n}, frame_size=({h}, {w}){state})"

    # ----------------------------------------------------------------------------- for the kinds of source
    def _frame(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def _release(self) -> None:
        pass

    def _check_index(self, index) -> int:
        if isinstance(index, bool):
            raise InputError(f"a frame index must be an integer, got {index!r}")
        try:
            i = operator.index(index)
        except TypeError:
            raise InputError(f"a frame index must be an integer, got {type(index).__name__}") from None
        if i < 0:
            raise FrameOutOfRange(f"frame {i} is out of range: frame indexes start at 0")
        n = self.num_frames
        if n is not None and i >= n:
            if self.is_stream:
                raise EndOfVideo(f"frame {i} is past the end of the stream: it had {n} frames")
            raise FrameOutOfRange(f"frame {i} is out of range: the video has {n} frames (0..{n - 1})")
        return i

    def _check_frame(self, arr: np.ndarray, index: int, what: str, max_pixels: Optional[int]) -> None:
        """Set ``frame_size`` from the first frame checked; refuse a frame of another size or over the limit."""
        h, w = arr.shape[:2]
        if self.frame_size == (0, 0):
            check_pixels(h, w, what, max_pixels)
            self.frame_size = (h, w)
        elif (h, w) != self.frame_size:
            fh, fw = self.frame_size
            raise ImageError(f"{what}: frame {index} is {w}x{h} pixels but the video's frames are {fw}x{fh}; "
                             "every frame of a video must have the same size")


def check_pixels(h: int, w: int, what: str, max_pixels: Optional[int]) -> None:
    """Refuse an empty frame, or one over ``max_pixels`` (None: no limit)."""
    if h <= 0 or w <= 0:
        raise ImageError(f"{what}: empty frame ({w}x{h})")
    if max_pixels is not None and h * w > max_pixels:
        raise ImageError(f"{what}: frames of {w}x{h} pixels are over the limit of {max_pixels} pixels "
                         "(max_pixels); downscale the video first or raise the limit")


class FrameWindow:
    """The last few decoded frames, by index: at most ``capacity`` of them, the least recently used dropped."""

    def __init__(self, capacity: int):
        self.capacity = max(1, int(capacity))
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, index: int) -> Optional[np.ndarray]:
        arr = self._frames.get(index)
        if arr is not None:
            self._frames.move_to_end(index)
        return arr

    def put(self, index: int, arr: np.ndarray) -> None:
        self._frames[index] = arr
        self._frames.move_to_end(index)
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)

    def clear(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, index: int) -> bool:
        return index in self._frames
