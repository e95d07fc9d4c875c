"""Video input and output: ``open_video`` turns what a user passes into a ``FrameSource``; ``write_video``.

``open_video(source)`` accepts:

- a video file path: decoded with PyAV (``pip install 'sam3kit[video]'``), lazily, seeking where needed
  (``video_file.py``);
- a folder of frame images: the image files in numeric order (``2.jpg`` before ``10.jpg``, then by name), hidden
  files skipped, other files skipped with a log line;
- a list or tuple of frames (paths, PIL images, arrays, tensors: whatever ``load_image`` reads; mixed freely), a
  (T, H, W, 3) array or a (T, 3, H, W) / (T, H, W, 3) torch tensor;
- any other iterable or iterator of such frames: a stream, pulled only when a frame is asked for, in order, with
  a bounded look-back (``lookback``); its length becomes known at its end (``EndOfVideo``);
- a ``FrameSource`` (returned as it is).

Every kind decodes only: frames come back at their own size as uint8 RGB. The official video loaders resize every
frame to the model size (Pillow for a folder, OpenCV's bicubic for a file), normalise it and store the whole video
as a float16 tensor up front; here the frames go through the same preprocessing as single images (the session
hands them to the image encoder) and are never all held. Folder names: the official loader sorts names that are
integers (``int(stem)``) and falls back to plain string order otherwise; the order here is the same for integer
names and numeric within other names too (``frame_2`` before ``frame_10``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import InputError
from . import image as _image
from .video_file import DEFAULT_CACHE_BYTES, MAX_CACHED_FRAMES, VideoFile
from .video_frames import FrameList, FrameStream, check_lookback, frame_order_key, list_frame_files
from .video_source import EndOfVideo, FrameOutOfRange, FrameSource
from .video_writer import write_video

__all__ = [
    "open_video", "write_video", "FrameSource", "EndOfVideo", "FrameOutOfRange", "frame_order_key",
    "DEFAULT_CACHE_BYTES", "MAX_CACHED_FRAMES",
]


def open_video(source: Any, *, max_pixels: Optional[int] = None, lookback: int = 1,
               cache_bytes: int = DEFAULT_CACHE_BYTES) -> FrameSource:
    """Open ``source`` (a video file, a folder of frames, a list of frames or a stream) as a ``FrameSource``.

    Args:
        max_pixels: the largest frame (H * W) accepted; None: ``sam3kit.io.image.MAX_PIXELS`` (Pillow's
            decompression-bomb limit unless changed; setting it to None there lifts the limit).
        lookback: for a stream, how many of the last frames pulled stay readable (at least 1: the last one).
        cache_bytes: for a video file, the memory for the window of last decoded frames (2 to
            ``MAX_CACHED_FRAMES`` frames).

    Only the first frame is decoded here (to know the frame size). Raises ``ImageError`` for a missing, empty,
    unreadable or frameless video, an empty folder or one without images, an empty list or stream, or a first
    frame that cannot be decoded; ``InputError`` for a source of another type or a bad option.
    """
    if isinstance(source, FrameSource):
        return source
    limit = _limit(max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            return FrameList(list_frame_files(path), name=path.resolve().name or "frames", max_pixels=limit,
                             what=str(path))
        if not isinstance(cache_bytes, (int, np.integer)) or isinstance(cache_bytes, bool) or cache_bytes < 0:
            raise InputError(f"cache_bytes must be a number of bytes >= 0, got {cache_bytes!r}")
        return VideoFile(path, max_pixels=limit, cache_bytes=int(cache_bytes))
    if isinstance(source, np.ndarray) or _is_tensor(source):
        if source.ndim == 4:
            return FrameList(list(source), name="frames", max_pixels=limit)
        raise InputError(f"a video given as one array or tensor must have 4 dimensions (T, H, W, 3), got shape "
                         f"{tuple(source.shape)}; for a single image, pass a list with it")
    if isinstance(source, (list, tuple)):
        return FrameList(source, name=_list_name(source), max_pixels=limit)
    if isinstance(source, (bytes, bytearray, memoryview, dict)) or _is_pil(source):
        raise InputError(f"expected a video file, a folder of frames, a list of frames or an iterator of frames, "
                         f"got {type(source).__name__}")
    try:
        iterator = iter(source)
    except TypeError:
        raise InputError(f"expected a video file, a folder of frames, a list of frames or an iterator of frames, "
                         f"got {type(source).__name__}") from None
    return FrameStream(iterator, lookback=check_lookback(lookback), max_pixels=limit)


def _limit(max_pixels: Optional[int]) -> Optional[int]:
    if max_pixels is None:
        return _image.MAX_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0:
        raise InputError(f"max_pixels must be a positive number of pixels, got {max_pixels!r}")
    return int(max_pixels)


def _list_name(frames) -> str:
    """The folder of the first frame when frames are paths, else ``"frames"``."""
    first = frames[0] if len(frames) else None
    if isinstance(first, (str, os.PathLike)):
        parent = Path(first).expanduser().resolve().parent.name
        return parent or "frames"
    return "frames"


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "ndim") and hasattr(x, "shape")


def _is_pil(x: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(x, Image.Image)
