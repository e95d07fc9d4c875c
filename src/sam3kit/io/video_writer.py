"""Write frames as an H.264 MP4 (yuv420p) with PyAV, atomically: for ``sam3kit track --overlay``.

H.264 in yuv420p needs an even width and height: a frame of odd size gets its last row and/or column repeated
once (so a 63x47 video is stored as 64x48). The file is written under a hidden temporary name in the destination
folder and renamed onto ``path`` once complete (``atomic_write``); on any error nothing is left behind.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

import numpy as np

from ..errors import ImageError, InputError, OutputError
from .image import load_image
from .video_file import import_av
from .writers import atomic_write

# Encoders tried in order: x264, then Cisco's OpenH264 (what some FFmpeg builds have instead)
H264_ENCODERS = ("libx264", "libopenh264", "h264")


def write_video(path: Union[str, Path], frames: Iterable[Any], fps: float, *, overwrite: bool = False,
                options: Optional[Mapping[str, str]] = None) -> Path:
    """Encode ``frames`` into ``path`` (an H.264 MP4, yuv420p) at ``fps`` frames per second; return ``path``.

    Args:
        frames: an iterable of (H, W, 3) uint8 RGB arrays (or PIL images), all of one size; pulled one at a time,
            never all held.
        fps: frames per second, a positive number (29.97 and Fraction(30000, 1001) are both fine).
        overwrite: replace an existing file (else ``OutputError``).
        options: encoder options passed to FFmpeg, e.g. ``{"crf": "18"}`` for libx264.

    Raises ``InputError`` for no frames, frames of different sizes or a bad ``fps``, ``ImageError`` for a frame
    that is not an image, ``OutputError`` when ``path`` exists (without ``overwrite``), cannot be written, or PyAV
    (or an H.264 encoder in it) is missing.
    """
    path = Path(path)
    rate = _rate(fps)
    if not overwrite and path.exists():
        raise OutputError(f"{path} exists already; pass --force (overwrite=True) to replace it")
    av = import_av("writing a video", OutputError)
    codec = _h264_encoder(av)

    def write(fh) -> None:
        with av.open(fh, mode="w", format="mp4") as out:
            stream, size = None, None
            for n, item in enumerate(frames):
                arr = _rgb(item, n)
                if stream is None:
                    size = arr.shape[:2]
                    stream = out.add_stream(codec, rate=rate)
                    stream.width, stream.height = size[1] + size[1] % 2, size[0] + size[0] % 2
                    stream.pix_fmt = "yuv420p"
                    stream.codec_context.time_base = 1 / rate
                    if options:
                        stream.codec_context.options = dict(options)
                elif arr.shape[:2] != size:
                    raise InputError(f"frame {n} is {arr.shape[1]}x{arr.shape[0]} pixels but the first frame is "
                                     f"{size[1]}x{size[0]}; every frame of a video must have the same size")
                frame = av.VideoFrame.from_ndarray(_pad_even(arr), format="rgb24")
                frame.pts, frame.time_base = n, 1 / rate
                for packet in stream.encode(frame):
                    out.mux(packet)
            if stream is None:
                raise InputError(f"{path}: no frames to write")
            for packet in stream.encode(None):
                out.mux(packet)

    try:
        return atomic_write(path, write, overwrite=overwrite)
    except av.error.FFmpegError as e:
        raise OutputError(f"cannot write {path}: the video encoder failed ({e})") from e


def _rate(fps: Any) -> Fraction:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(fps, bool) or not math.isfinite(value) or value <= 0:
        raise InputError(f"fps must be a positive number of frames per second, got {fps!r}")
    return Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps


def _h264_encoder(av) -> str:
    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # UnknownCodecError, or a decoder-only name
            continue
        return name
    raise OutputError("this PyAV build has no H.264 encoder (tried " + ", ".join(H264_ENCODERS) + ")")


def _rgb(item: Any, n: int) -> np.ndarray:
    try:
        return load_image(item)
    except ImageError as e:
        raise ImageError(f"frame {n}: {e}") from e


def _pad_even(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    if h % 2 or w % 2:
        arr = np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return arr
