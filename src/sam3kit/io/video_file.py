"""A video file read with PyAV: frames decoded on demand, reached by seeking, a few kept.

Frame indexes count frames in presentation order. Opening reads the file's packets once without decoding them
(demuxing: input proportional to the file size, no decoding) and keeps, per frame, only its presentation
timestamp and whether it is a key frame. That gives the exact number of frames whether or not the container
states it (Matroska/WebM and MPEG-TS do not; an MP4's stated count can disagree with its edit list) and does not
assume a constant frame rate. Then only the first frame is decoded.

``frame(i)`` decodes forward from the current position when no key frame lies between it and frame ``i`` (so
reading frames in order never seeks); otherwise it seeks to the last key frame at or before frame ``i`` and
decodes forward. A seek that lands after the wanted frame (imprecise seeking in some containers) is retried from
earlier key frames and finally from the start of the file. The last decoded frames are kept in a small window
(``cache_bytes``, at most ``MAX_CACHED_FRAMES`` frames): reading backwards decodes each group of pictures once per
window, not once per frame.

Files whose packets carry no timestamps, or repeated ones (raw H.264 / HEVC streams, some AVI files), are read
in decoding order: a frame is reached by decoding from the start of the file, or forward from the current
position.

Pixels: FFmpeg converts the decoded picture to RGB24 (8 bits per channel; alpha dropped); a picture whose display
matrix rotates it by a multiple of 90 degrees (videos filmed upright on a phone) is turned as a player shows it,
as EXIF orientation is for images, so ``frame_size`` and every coordinate are those of the upright picture.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import ImageError
from .video_frames import still_image_extension
from .video_source import FrameSource, FrameWindow, check_pixels

logger = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 64 << 20
MAX_CACHED_FRAMES = 32

VIDEO_EXTRA = "pip install 'sam3kit[video]'"


def import_av(purpose: str, error: type = ImageError):
    """The ``av`` module (PyAV); ``error`` naming the extra to install when it is missing."""
    try:
        import av
    except ImportError as e:
        raise error(f"{purpose} needs PyAV, which is not installed: {VIDEO_EXTRA}") from e
    return av


class _TimestampMismatch(Exception):
    """A decoded frame's timestamp is not one of the packets': fall back to counting in decoding order."""


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that show ``frame`` upright (its display matrix's rotation; flips and
    angles that are not multiples of 90 degrees are not applied)."""
    degrees = getattr(frame, "rotation", 0) or 0  # PyAV: the counter-clockwise angle of the display matrix
    return int(round(degrees / 90)) % 4 if degrees % 90 == 0 else 0


def _why(e: BaseException) -> str:
    return str(getattr(e, "strerror", None) or e)


class VideoFile(FrameSource):
    """The frames of a video file (the first video stream), decoded on demand.

    ``decoded_frames`` and ``seeks`` count the frames decoded and the seeks (or restarts from the beginning) made
    since the file was opened, for diagnostics and tests.
    """

    def __init__(self, path: Path, *, max_pixels: Optional[int], cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(path.stem or path.name)
        self.path = path
        self._max_pixels = max_pixels
        if not path.exists():
            raise ImageError(f"{path}: no such file or folder")
        if still_image_extension(path):
            raise ImageError(f"{path} is a single image, not a video; pass a folder of frames, or a list such "
                             f"as [{str(path)!r}] for a one-frame video")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes); expected a video (MP4, MOV, MKV, WebM, AVI, ...)")
        self._av = import_av("reading a video file")
        self._errors = (self._av.error.FFmpegError, OSError)
        self.decoded_frames = 0
        self.seeks = 0
        self._container: Any = None
        self._stream: Any = None
        self._frames: Any = None  # the decoding generator, or None when it must be restarted
        self._pos = -1  # index of the last frame the generator gave (-1: at the start of the file)
        self._fresh = False  # True right after a seek, until its first frame tells where it landed
        self._window = FrameWindow(1)
        self._sequential = False
        self._pts: np.ndarray = np.zeros(0, np.int64)  # presentation timestamps in presentation order
        self._keys: list[int] = []  # indexes of the key frames, ascending
        self.num_frames = self._scan()
        try:
            self._restart(None)
            first = self._decode(0)
        except BaseException:
            self._release()
            raise
        self._window.capacity = int(np.clip(cache_bytes // max(first.nbytes, 1), 2, MAX_CACHED_FRAMES))

    # ----------------------------------------------------------------------------- opening
    def _open_container(self):
        try:
            container = self._av.open(str(self.path), mode="r")
        except self._errors as e:
            raise ImageError(f"{self.path}: not a video FFmpeg can read ({_why(e)}); expected a video file "
                             "(MP4, MOV, MKV, WebM, AVI, ...)") from e
        if container.format.name == "tty" or not container.streams.video:
            # FFmpeg shows any text file as a "tty" (ANSI art) video: a text file is not a video here
            what = "a text file" if container.format.name == "tty" else "a file without a video stream"
            container.close()
            raise ImageError(f"{self.path}: {what}, not a video; expected a video file (MP4, MOV, MKV, WebM, ...)")
        return container, container.streams.video[0]

    def _scan(self) -> int:
        """Read every packet once (no decoding): presentation timestamps, key frames, the frame count."""
        container, stream = self._open_container()
        pts: list[Optional[int]] = []
        keys: list[bool] = []
        try:
            cc = stream.codec_context
            if cc.width > 0 and cc.height > 0:
                check_pixels(cc.height, cc.width, str(self.path), self._max_pixels)
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else None
            for packet in container.demux(stream):
                if packet.size == 0 or getattr(packet, "is_discard", False):
                    continue  # the empty packet that ends a demux; packets the edit list drops
                pts.append(packet.pts)
                keys.append(bool(packet.is_keyframe))
        except self._errors as e:
            if not pts:
                raise ImageError(f"{self.path}: unreadable video data ({_why(e)})") from e
            logger.warning("%s: the video data is damaged after %d frames (%s); only those are read",
                           self.path, len(pts), _why(e))
        finally:
            container.close()
        if not pts:
            raise ImageError(f"{self.path}: the video stream has no frames")
        if any(p is None for p in pts) or len(set(pts)) != len(pts):
            logger.info("%s: frame timestamps are missing or repeated; frames are counted in decoding order",
                        self.path)
            self._sequential = True
            return len(pts)
        order = np.argsort(np.asarray(pts, np.int64), kind="stable")
        self._pts = np.asarray(pts, np.int64)[order]
        self._keys = np.flatnonzero(np.asarray(keys, bool)[order]).tolist()
        return len(pts)

    # ----------------------------------------------------------------------------- decoder position
    def _restart(self, key: Optional[int]) -> None:
        """Put the decoder at key frame ``key`` (a seek), or with None at the start (the file is opened again)."""
        self._frames = None
        if key is None:
            if self._container is not None:
                self._container.close()
                self._container = None
            self._container, self._stream = self._open_container()
            self._pos, self._fresh = -1, False
        else:
            self._container.seek(int(self._pts[key]), stream=self._stream, backward=True, any_frame=False)
            self._pos, self._fresh = key - 1, True
        self._frames = self._container.decode(self._stream)

    def _key_at_or_before(self, index: int) -> int:
        k = bisect_right(self._keys, index) - 1
        return self._keys[k] if k >= 0 else -1

    def _seek_plan(self, index: int) -> list[Optional[int]]:
        """Where to seek for frame ``index``: the last three key frames at or before it, then the start."""
        k = bisect_right(self._keys, index) - 1
        return [self._keys[m] for m in range(k, max(k - 3, -1), -1) if self._keys[m] > 0] + [None]

    def _index_of(self, pts: Optional[int]) -> int:
        if pts is not None:
            j = int(np.searchsorted(self._pts, pts))
            if j < len(self._pts) and self._pts[j] == pts:
                return j
        raise _TimestampMismatch(pts)

    # ----------------------------------------------------------------------------- decoding
    def _frame(self, index: int) -> np.ndarray:
        arr = self._window.get(index)
        if arr is None:
            arr = self._decode(index)
        return arr.copy()

    def _decode(self, index: int) -> np.ndarray:
        if self._sequential:
            return self._decode_in_order(index)
        try:
            # decoding on from here is no more work than from the last key frame at or before the frame
            if self._frames is not None and self._pos < index and self._key_at_or_before(index) <= self._pos + 1:
                arr = self._decode_forward(index)
                if arr is not None:
                    return arr
            for key in self._seek_plan(index):
                self.seeks += 1
                try:
                    self._restart(key)
                except self._errors:
                    continue  # a failed seek: try an earlier key frame, or the start
                arr = self._decode_forward(index)
                if arr is not None:
                    return arr
        except _TimestampMismatch as e:
            logger.warning("%s: a decoded frame has a timestamp (%s) no packet had; frames are counted in "
                           "decoding order from now on", self.path, e)
            self._sequential = True
            self._window.clear()
            return self._decode_in_order(index)
        raise ImageError(f"{self.path}: frame {index} could not be decoded")

    def _decode_forward(self, index: int) -> Optional[np.ndarray]:
        """Decode up to frame ``index`` by timestamp; None when a seek landed after it."""
        keep_from = index - self._window.capacity + 1
        last = None
        try:
            for frame in self._frames:
                self.decoded_frames += 1
                j = self._index_of(frame.pts)
                if j <= self._pos:
                    continue  # frames before the key frame sought (leading pictures of an open GOP)
                if self._fresh:
                    self._fresh = False
                    if j > index:
                        self._frames = None
                        return None
                self._pos = j
                if j >= keep_from:
                    arr = self._convert(frame, j)
                    self._window.put(j, arr)
                    if j >= index:
                        if j > index:
                            logger.warning("%s: frame %d did not decode; frame %d is served in its place",
                                           self.path, index, j)
                        return arr
                last = (frame, j)
        except _TimestampMismatch:
            self._frames = None
            raise
        except self._errors as e:
            self._frames = None
            raise ImageError(f"{self.path}: frame {index} could not be decoded ({_why(e)})") from e
        self._frames = None  # the end of the file came first
        if self._fresh:
            return None
        if self._window.get(self._pos) is not None:
            arr = self._window.get(self._pos)
        elif last is not None:
            arr = self._convert(*last)
        else:
            raise ImageError(f"{self.path}: frame {index} could not be decoded: the video ends before it")
        logger.warning("%s: the video ends at frame %d before frame %d; frame %d is served in its place",
                       self.path, self._pos, index, self._pos)
        return arr

    def _decode_in_order(self, index: int) -> np.ndarray:
        """Frames counted in decoding order: decode forward, from the start if the frame is behind."""
        if self._frames is None or self._pos >= index:
            if self._frames is not None or self._pos >= 0:
                self.seeks += 1
            self._restart(None)
        keep_from = index - self._window.capacity + 1
        try:
            for frame in self._frames:
                self.decoded_frames += 1
                self._pos += 1
                if self._pos >= keep_from:
                    arr = self._convert(frame, self._pos)
                    self._window.put(self._pos, arr)
                    if self._pos == index:
                        return arr
        except self._errors as e:
            self._frames = None
            raise ImageError(f"{self.path}: frame {index} could not be decoded ({_why(e)})") from e
        self._frames = None
        raise ImageError(f"{self.path}: frame {index} could not be decoded: the video ends after "
                         f"{self._pos + 1} frames")

    def _convert(self, frame, index: int) -> np.ndarray:
        """The decoded picture as RGB, turned upright as its display matrix says (phone videos)."""
        turns = _quarter_turns(frame)
        h, w = (frame.width, frame.height) if turns % 2 else (frame.height, frame.width)
        if self.frame_size != (0, 0) and (h, w) != self.frame_size:
            fh, fw = self.frame_size
            raise ImageError(f"{self.path}: frame {index} is {w}x{h} pixels but the video's frames are {fw}x{fh}; "
                             "every frame of a video must have the same size")
        arr = frame.to_ndarray(format="rgb24")
        if turns:
            arr = np.rot90(arr, turns)
        arr = np.ascontiguousarray(arr)
        self._check_frame(arr, index, str(self.path), self._max_pixels)
        return arr

    def _release(self) -> None:
        self._frames = None
        self._window.clear()
        if self._container is not None:
            self._container.close()
            self._container = None
