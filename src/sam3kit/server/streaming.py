"""``FrameStream``: a session's propagation as NDJSON, one line per frame, sent as each frame is computed.

Each frame is computed in a worker thread under the model lock, so image prompts go between frames. The stream
owns the session's busy flag and the propagation's iterator until it ends, and ``close`` gives both back in every
case: the last frame sent, a ``DELETE`` of the session (checked before each frame), an error (sent as a last line
``{"error": CODE, "message": TEXT}``: the status line went out with the first frame), or a client that went away
(the server stops at the frame being computed; nothing runs after it). ``ClosingStreamingResponse`` makes sure
``close`` runs even when no frame was asked for.
"""

from __future__ import annotations

import json
import logging
from typing import Iterator, Optional

import anyio
from starlette.responses import StreamingResponse

from ..errors import Sam3Error
from .answers import frame_answer
from .errors import ApiError
from .runner import ModelRunner
from .videos import VideoEntry, VideoStore

log = logging.getLogger("sam3kit.server")

NDJSON = "application/x-ndjson"


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


class FrameStream:
    """An async iterator of NDJSON lines over ``iterator`` (a ``VideoSession.propagate``) of a claimed session."""

    def __init__(self, entry: VideoEntry, store: VideoStore, runner: ModelRunner, iterator: Iterator) -> None:
        self.entry = entry
        self.store = store
        self.runner = runner
        self.iterator = iterator
        self.frames_sent = 0
        self._ended = False
        self._closed = False

    def __aiter__(self) -> "FrameStream":
        return self

    async def __anext__(self) -> bytes:
        if self._ended or self.entry.deleted:
            self.close()
            raise StopAsyncIteration
        try:
            line = await anyio.to_thread.run_sync(self._step)  # a cancel waits for the frame being computed
        except BaseException:
            self.close()
            raise
        if line is None:
            self.close()
            raise StopAsyncIteration
        return line

    def _step(self) -> Optional[bytes]:
        """The next frame's line (in a worker thread), an error line, or None at the end."""
        try:
            with self.runner.hold("propagation"):
                result = next(self.iterator, None)
            if result is None:
                return None
            self.frames_sent += 1
            return _line(frame_answer(result))
        except ApiError as e:
            self._ended = True
            return _line({"error": e.code, "message": e.message})
        except Sam3Error as e:
            self._ended = True
            return _line({"error": "invalid_input", "message": e.message})
        except Exception as e:  # noqa: BLE001 - the status is sent already: the error becomes the last line
            log.error("propagation of session %s failed", self.entry.session_id, exc_info=e)
            self._ended = True
            return _line({"error": "internal_error", "message": f"unexpected {type(e).__name__} (a bug; the server "
                                                                "log has the traceback)"})

    def close(self) -> None:
        """End the propagation and give the session back (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self.iterator, "close", None)
            if close is not None:
                close()
        finally:
            self.entry.release()
            self.store.finish(self.entry)

    async def aclose(self) -> None:
        self.close()


class ClosingStreamingResponse(StreamingResponse):
    """A ``StreamingResponse`` that closes its ``FrameStream`` however the response ends."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()
