"""``ImageStore``: the images the server holds, encoded in the background, evicted least recently used.

An image's id is a digest of its bytes, so the same bytes uploaded twice are one image with one encoding (the
second upload answers at once with the first one's status). Decoding happens in the upload request (so a bad
file is refused there); the ViT runs on one background thread, one image at a time, under the model lock
(``runner.py``), with its progress counted layer by layer. Prompts wait for an image that is still encoding (up
to ``encoding_wait_s``, then 409).

Limits: at most ``max_images`` images and ``max_cache_bytes`` bytes of encodings (the ViT output plus the necks
computed so far: an image's size grows by its necks on its first ``segment`` and first ``predict``). Beyond
either, the least recently used images are evicted; an evicted id answers 410 (the server remembers the last
``EVICTED_MEMORY`` evictions, so it can tell an evicted id from an unknown one, 404). An image whose own
encoding is larger than ``max_cache_bytes`` fails with that reason. The image a request is using is never the
one evicted to make room for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from typing import Iterator, Optional

import numpy as np

from ..model.features import tensor_bytes
from ..pipelines.encoding import ImageEncoder, ImageState
from .decoding import decode_image
from .errors import ApiError
from .runner import ModelRunner
from .settings import ServerSettings

log = logging.getLogger("sam3kit.server")

ENCODING, READY, FAILED, EVICTED, DELETED = "encoding", "ready", "failed", "evicted", "deleted"
EVICTED_MEMORY = 4096  # evicted ids remembered (410 instead of 404)
ANSWERS_KEPT = 8  # segment answers kept per image for mask_input


def image_id_of(data: bytes) -> str:
    """The id of an image's bytes: the first 24 hex digits of their SHA-256."""
    return hashlib.sha256(data).hexdigest()[:24]


def state_bytes(state: ImageState) -> int:
    """Bytes an ``ImageState`` holds: the ViT output and the necks computed so far (none computed here)."""
    parts = [state.trunk]
    if state.has_detector_features:
        parts.append(state.detector_features())
    if state.has_tracker_features:
        parts.append(state.tracker_features())
    return tensor_bytes(parts)


class ImageEntry:
    """One image: its size, status, encoding and recent ``segment`` answers (their masks, for ``mask_input``)."""

    def __init__(self, image_id: str, pixels: np.ndarray) -> None:
        self.image_id = image_id
        self.height, self.width = int(pixels.shape[0]), int(pixels.shape[1])
        self.pixels: Optional[np.ndarray] = pixels  # until encoded
        self.status = ENCODING
        self.progress = 0.0
        self.error: Optional[str] = None
        self.state: Optional[ImageState] = None
        self.nbytes = 0
        self.answers: OrderedDict[str, list[dict]] = OrderedDict()
        self.done = threading.Event()  # set once the status is no longer "encoding"

    def status_json(self) -> dict:
        status = self.status if self.status in (READY, FAILED) else ENCODING
        return {"image_id": self.image_id, "width": self.width, "height": self.height, "status": status,
                "progress": round(self.progress, 4), "error": self.error}

    def remember_answer(self, segment_id: str, masks: list[dict]) -> None:
        self.answers[segment_id] = masks
        while len(self.answers) > ANSWERS_KEPT:
            self.answers.popitem(last=False)


class ImageStore:
    """The images held by the server (module docstring). Thread-safe."""

    def __init__(self, encoder: ImageEncoder, runner: ModelRunner, settings: ServerSettings) -> None:
        self.encoder = encoder
        self.runner = runner
        self.settings = settings
        self._entries: OrderedDict[str, ImageEntry] = OrderedDict()  # least recently used first
        self._gone: OrderedDict[str, str] = OrderedDict()  # id -> why it is gone (evicted ids)
        self._lock = threading.Lock()
        self._queue: queue.Queue[Optional[ImageEntry]] = queue.Queue()
        self._worker: Optional[threading.Thread] = None
        self._closed = False

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def cache_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    # ------------------------------------------------------------------ upload and lookup
    def add(self, data: bytes) -> tuple[ImageEntry, bool]:
        """The entry of the image ``data`` and whether it is new (then its encoding is queued). ``ApiError`` for
        bytes that are not a readable image within the pixel limit."""
        image_id = image_id_of(data)
        with self._lock:
            e = self._entries.get(image_id)
            if e is not None and e.status != FAILED:
                self._entries.move_to_end(image_id)
                return e, False
        pixels = decode_image(data, self.settings.max_image_pixels)  # outside the lock: may take a while
        with self._lock:
            if self._closed:
                raise ApiError(503, "shutting_down", "the server is shutting down")
            e = self._entries.get(image_id)
            if e is not None and e.status != FAILED:  # the same bytes arrived meanwhile
                self._entries.move_to_end(image_id)
                return e, False
            entry = ImageEntry(image_id, pixels)
            self._entries[image_id] = entry
            self._entries.move_to_end(image_id)
            self._gone.pop(image_id, None)
            self._evict(keep=entry)
            self._start_worker()
            self._queue.put(entry)
        return entry, True

    def get(self, image_id: str) -> ImageEntry:
        """The entry of ``image_id``; ``ApiError`` 404 (unknown) or 410 (evicted)."""
        with self._lock:
            e = self._entries.get(image_id)
            if e is not None:
                return e
            why = self._gone.get(image_id)
        if why is not None:
            raise ApiError(410, "image_evicted", f"image {image_id} was {why}; upload it again (POST /v1/images)")
        raise ApiError(404, "image_not_found", f"no image {image_id} on this server; upload it first "
                                               "(POST /v1/images)")

    def delete(self, image_id: str) -> None:
        entry = self.get(image_id)
        with self._lock:
            if self._entries.get(image_id) is entry:
                del self._entries[image_id]
        self._drop(entry, DELETED)

    @contextlib.contextmanager
    def use(self, image_id: str) -> Iterator[tuple[ImageEntry, ImageState]]:
        """The entry and encoding of ``image_id``, waiting for the encoding (``encoding_wait_s``); after the body
        the entry's bytes are counted again (the necks a prompt computed) and other images evicted if needed.

        ``ApiError``: 404 / 410 as ``get``; 409 still encoding after the wait, or failed.
        """
        entry = self.get(image_id)
        if not entry.done.wait(self.settings.encoding_wait_s):
            raise ApiError(409, "image_encoding", f"image {image_id} is still encoding ({entry.progress:.0%} done "
                                                  f"after waiting {self.settings.encoding_wait_s:g} s); poll GET "
                                                  f"/v1/images/{image_id} and retry when it is ready")
        state = entry.state
        if entry.status == FAILED:
            raise ApiError(409, "image_failed", f"image {image_id} could not be encoded: {entry.error}")
        if entry.status in (EVICTED, DELETED) or state is None:
            self.get(image_id)  # raises 404 / 410
            raise ApiError(410, "image_evicted", f"image {image_id} is gone; upload it again")
        with self._lock:
            if self._entries.get(image_id) is entry:
                self._entries.move_to_end(image_id)
        try:
            yield entry, state
        finally:
            with self._lock:
                if self._entries.get(image_id) is entry and entry.state is state:
                    entry.nbytes = state_bytes(state)
                    self._evict(keep=entry)

    # ------------------------------------------------------------------ eviction
    def _evict(self, keep: ImageEntry) -> None:
        """Evict least recently used entries other than ``keep`` while over a limit (called with the lock)."""
        s = self.settings
        while len(self._entries) > 1 and (len(self._entries) > s.max_images or
                                          sum(e.nbytes for e in self._entries.values()) > s.max_cache_bytes):
            victim = next(e for e in self._entries.values() if e is not keep)
            reason = (f"evicted to stay within --max-images {s.max_images}" if len(self._entries) > s.max_images
                      else f"evicted to keep the encodings within --max-cache-bytes {s.max_cache_bytes}")
            del self._entries[victim.image_id]
            self._gone[victim.image_id] = reason + " (least recently used)"
            while len(self._gone) > EVICTED_MEMORY:
                self._gone.popitem(last=False)
            self._drop(victim, EVICTED)

    @staticmethod
    def _drop(entry: ImageEntry, status: str) -> None:
        entry.status = status
        entry.state = None
        entry.pixels = None
        entry.answers.clear()
        entry.nbytes = 0
        entry.done.set()

    # ------------------------------------------------------------------ background encoding
    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="sam3kit-encoder", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            if entry.status != ENCODING or entry.pixels is None:
                continue  # evicted or deleted while queued
            try:
                self._encode(entry)
            except ApiError as e:
                self._fail(entry, e.message)
            except Exception as e:  # noqa: BLE001 - reported as the image's status, logged with the traceback
                log.error("encoding image %s failed", entry.image_id, exc_info=e)
                self._fail(entry, f"{type(e).__name__}: {e}")

    def _encode(self, entry: ImageEntry) -> None:
        pixels = entry.pixels
        started = time.monotonic()

        def progress(fraction: float) -> None:
            entry.progress = min(fraction, 0.99)

        with self.runner.hold("encoding", wait_s=math.inf):  # queued work waits its turn
            if entry.status != ENCODING:
                return
            with _layer_progress(self.encoder, progress):
                state = self.encoder.encode_arrays([pixels])
        nbytes = state_bytes(state)
        with self._lock:
            if self._entries.get(entry.image_id) is not entry:
                return  # evicted or deleted meanwhile
            entry.pixels = None
            if nbytes > self.settings.max_cache_bytes:
                entry.status, entry.error = FAILED, (f"its encoding needs {nbytes} bytes, over the server's "
                                                     f"--max-cache-bytes {self.settings.max_cache_bytes}")
            else:
                entry.state, entry.nbytes, entry.status, entry.progress = state, nbytes, READY, 1.0
                self._evict(keep=entry)
        log.info("image %s (%dx%d) encoded in %.1f s", entry.image_id, entry.width, entry.height,
                 time.monotonic() - started)
        entry.done.set()

    def _fail(self, entry: ImageEntry, reason: str) -> None:
        with self._lock:
            entry.pixels = None
            if entry.status == ENCODING:
                entry.status, entry.error = FAILED, reason
        entry.done.set()

    def close(self) -> None:
        """Stop the encoding thread (after the current image) and forget every image."""
        with self._lock:
            self._closed = True
            entries = list(self._entries.values())
            self._entries.clear()
        for e in entries:
            self._drop(e, DELETED)
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=60)


@contextlib.contextmanager
def _layer_progress(encoder: ImageEncoder, callback) -> Iterator[None]:
    """Report the fraction of the ViT's layers run so far to ``callback`` while the body encodes one image."""
    layers = getattr(encoder.model.image_trunk_module(), "layers", None)
    if not layers:
        yield
        return
    n = len(layers)
    done = [0]

    def hook(*_):
        done[0] += 1
        callback(done[0] / n)

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
