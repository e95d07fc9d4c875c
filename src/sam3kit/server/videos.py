"""``VideoStore``: the video sessions the server holds, each a ``VideoSession`` on an uploaded video file.

An upload is written to a private temporary folder (never held in memory whole) and opened with
``sam3kit.io.video.open_video`` (frames are decoded when asked for); the session id is random. At most
``max_sessions`` sessions: a new one beyond that answers 429 until one is deleted (a session holds a user's
prompts, so it is never evicted behind their back). A session does one thing at a time: a prompt or a
propagation on a session that is busy answers 409. Every model call holds the model lock (``runner.py``).

``DELETE`` closes a session at once, or, while a propagation streams, stops that stream at its next frame and
closes the session then.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Optional

from ..errors import ImageError, InputError
from ..io.video import FrameSource, open_video
from ..pipelines.video import VideoPredictor, VideoSession
from .errors import ApiError
from .runner import ModelRunner
from .settings import ServerSettings


class VideoEntry:
    """One session: the ``VideoSession``, its frame source and upload file, and whether it is busy."""

    def __init__(self, session_id: str, session: VideoSession, source: FrameSource, path: Path) -> None:
        self.session_id = session_id
        self.session = session
        self.source = source
        self.path = path
        self.concepts = 0
        self.deleted = False  # DELETE asked; the running stream closes the session when it stops
        self._busy = threading.Lock()
        self._doing = ""  # what holds it

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    def claim(self, what: str) -> None:
        """Make the session busy with ``what``; ``ApiError`` 409 if it is busy already (release with
        ``release``)."""
        if not self._busy.acquire(blocking=False):
            raise ApiError(409, "session_busy", f"video session {self.session_id} is busy ({self._doing}); a session "
                                                f"does one thing at a time: retry {what} when that is done (a "
                                                "propagation ends with its stream, or when its client disconnects)")
        self._doing = what
        if self.deleted:
            self._busy.release()
            raise ApiError(404, "session_not_found", f"video session {self.session_id} was deleted")

    def release(self) -> None:
        self._busy.release()

    def status_json(self) -> dict:
        s = self.session
        h, w = s.frame_size
        return {"session_id": self.session_id, "width": int(w), "height": int(h), "num_frames": s.num_frames,
                "fps": self.source.fps, "objects": [int(i) for i in s.object_ids], "concepts": self.concepts,
                "frames_with_results": len(s.frames_with_results), "busy": self.busy}

    def close_if_idle(self) -> None:
        """Close now unless busy (then the holder closes it when done, through ``VideoStore.finish``)."""
        if self._busy.acquire(blocking=False):
            try:
                self.close()
            finally:
                self._busy.release()

    def close(self) -> None:
        self.session.close()
        self.source.close()
        shutil.rmtree(self.path.parent, ignore_errors=True)


class VideoStore:
    """The video sessions (module docstring). Thread-safe."""

    def __init__(self, predictor: VideoPredictor, runner: ModelRunner, settings: ServerSettings) -> None:
        self.predictor = predictor
        self.runner = runner
        self.settings = settings
        self._sessions: dict[str, VideoEntry] = {}
        self._lock = threading.Lock()
        self._root: Optional[Path] = None  # made by the first upload
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def check_room(self) -> None:
        """``ApiError`` 429 when ``max_sessions`` sessions are held (checked before an upload is read, and again
        when it is opened)."""
        with self._lock:
            n = len(self._sessions)
        if n >= self.settings.max_sessions:
            raise self._full(n)

    def _full(self, n: int) -> ApiError:
        return ApiError(429, "too_many_sessions", f"the server holds {n} video sessions, its limit (--max-sessions "
                                                  f"{self.settings.max_sessions}); delete one (DELETE "
                                                  "/v1/videos/{id}) and retry")

    def new_upload(self, suffix: str) -> Path:
        """A fresh path in a folder of its own for an upload (removed with its session)."""
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="sam3kit-serve-"))
            root = self._root
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=str(root)))
        return folder / f"video{suffix}"

    def discard_upload(self, path: Path) -> None:
        shutil.rmtree(path.parent, ignore_errors=True)

    def open(self, path: Path) -> VideoEntry:
        """A session on the uploaded file ``path`` (which it then owns). ``ApiError`` 415 for a file that is
        not a readable video, 429 when full."""
        try:
            self.check_room()
            source = open_video(path, max_pixels=self.settings.max_image_pixels)
        except ApiError:
            self.discard_upload(path)
            raise
        except (ImageError, InputError) as e:
            self.discard_upload(path)
            raise ApiError(415, "not_a_video", f"the upload is not a video the server can read: {e.message}") from e
        try:
            session = self.predictor.start(source)
        except BaseException:
            source.close()
            self.discard_upload(path)
            raise
        entry = VideoEntry(secrets.token_hex(12), session, source, path)
        with self._lock:
            closed, n = self._closed, len(self._sessions)
            if not closed and n < self.settings.max_sessions:
                self._sessions[entry.session_id] = entry
                return entry
        entry.close()  # another upload took the last place meanwhile, or the server is stopping
        if closed:
            raise ApiError(503, "shutting_down", "the server is shutting down")
        raise self._full(n)

    def get(self, session_id: str) -> VideoEntry:
        with self._lock:
            e = self._sessions.get(session_id)
        if e is None:
            raise ApiError(404, "session_not_found", f"no video session {session_id} on this server (deleted, or "
                                                     "never created: POST /v1/videos)")
        return e

    @contextlib.contextmanager
    def use(self, session_id: str, what: str) -> Iterator[VideoEntry]:
        """The session, busy with ``what`` for the body (409 if busy already)."""
        entry = self.get(session_id)
        entry.claim(what)
        try:
            yield entry
        finally:
            entry.release()
            self.finish(entry)

    def finish(self, entry: VideoEntry) -> None:
        """Close ``entry`` if it was deleted while busy (called by whoever held it)."""
        if entry.deleted:
            entry.close_if_idle()

    def delete(self, session_id: str) -> None:
        """Remove a session: closed now, or when its running propagation stops (at its next frame)."""
        entry = self.get(session_id)
        with self._lock:
            self._sessions.pop(session_id, None)
        entry.deleted = True
        entry.close_if_idle()

    def frame_jpeg(self, session_id: str, index: int, quality: int = 90) -> bytes:
        """Frame ``index`` of a session's video as JPEG bytes (for a page to show). ``ApiError`` 422 for a
        frame out of range."""
        from PIL import Image

        entry = self.get(session_id)
        try:
            array = entry.source.frame(index)
        except InputError as e:  # out of range, or the session was closed meanwhile
            raise ApiError(422, "invalid_frame", e.message) from e
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=quality)
        return buf.getvalue()

    def close(self) -> None:
        """Close every session and remove the uploads."""
        with self._lock:
            self._closed = True
            entries = list(self._sessions.values())
            self._sessions.clear()
        for e in entries:
            e.deleted = True
            e.close_if_idle()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
