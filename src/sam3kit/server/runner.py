"""``ModelRunner``: one model run at a time.

Every use of the model (an image encoding, a ``segment`` or ``predict``, a video prompt, one propagated frame)
holds the runner's lock. The model's modules are shared and the predictor and sessions are not written for
concurrent use; running one thing at a time also keeps the peak memory at one run's activations, and on a CPU
two runs at once would only share the same cores. A propagation takes the lock once per frame, so prompts on
images go between the frames of a long video.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator, Optional

from .errors import ApiError


class ModelRunner:
    """The model lock, with what holds it (for ``/v1/health``) and a bounded wait."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = float(wait_s)
        self._lock = threading.Lock()
        self._holder: Optional[str] = None
        self.runs = 0

    @property
    def busy(self) -> bool:
        """True while a model run is going on."""
        return self._lock.locked()

    @property
    def holder(self) -> Optional[str]:
        """What the current run is ("encoding", "segment", ...), or None."""
        return self._holder

    @contextlib.contextmanager
    def hold(self, what: str, wait_s: Optional[float] = None) -> Iterator[None]:
        """Run the body with the model to itself; waits at most ``wait_s`` (default the runner's) for it, then
        raises ``ApiError`` 429 (``math.inf``: waits as long as it takes)."""
        wait = self.wait_s if wait_s is None else wait_s
        started = time.monotonic()
        if not self._lock.acquire(timeout=-1 if wait == float("inf") else wait):
            raise ApiError(429, "model_busy", f"the model has been busy ({self._holder or 'running'}) for the "
                                              f"{time.monotonic() - started:.0f} s this request could wait; "
                                              "retry later", headers={"retry-after": "5"})
        self._holder = what
        self.runs += 1
        try:
            yield
        finally:
            self._holder = None
            self._lock.release()
