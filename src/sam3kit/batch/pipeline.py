"""Decoding and result encoding overlapped with the model: the one executor of both engines.

Units flow through three stages (``worker.py``): decode in a small thread pool, the model on one of the process's
segmenters (one thread each), rows in the thread pool again. A bounded number of units is in flight (two per
segmenter, plus one), so the pool decodes the next units and encodes the last ones while the model runs, and memory
stays bounded. Units come out in the order they went in. Torch releases the GIL in its kernels, and image decoding
and the run-length encoder in C release it too, so the threads overlap for real.

The pool's tasks never wait on one another (a decoded unit is handed to the model by a callback), so no size of the
pool can deadlock.
"""

from __future__ import annotations

import queue
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence

from .plan import Unit
from .worker import Segmenter, decode_unit, unit_rows


class Pipeline:
    """Run units through ``segmenters`` (one model thread each) with ``io_threads`` threads for decoding and rows.

    ``run(units)`` yields ``(unit, table)`` in the order of ``units``. An unexpected exception of a stage (a bug;
    bad images become error rows inside the stages) stops the run and is raised by ``run``.
    """

    def __init__(self, segmenters: Sequence[Segmenter], io_threads: int = 2) -> None:
        if not segmenters:
            raise ValueError("a pipeline needs at least one segmenter")
        self.segmenters = list(segmenters)
        self.io_threads = max(1, int(io_threads))

    def run(self, units: Iterable[Unit]) -> Iterator[tuple[Unit, object]]:
        free: queue.Queue = queue.Queue()
        for s in self.segmenters:
            free.put(s)
        io = ThreadPoolExecutor(self.io_threads, thread_name_prefix="sam3kit-batch-io")
        model = ThreadPoolExecutor(len(self.segmenters), thread_name_prefix="sam3kit-batch-model")

        def infer(decoded):
            seg = free.get()
            try:
                return seg.infer(decoded)
            finally:
                free.put(seg)

        def then(fut: Future, out: Future, pool: ThreadPoolExecutor, fn) -> None:
            """When ``fut`` is done, run ``fn`` on its result in ``pool``; its result or failure goes to ``out``."""
            def done(f: Future) -> None:
                if _relay_failure(f, out):
                    return
                try:
                    nxt = pool.submit(fn, f.result())
                except RuntimeError as e:  # the pool is shutting down: the run was stopped
                    _settle(out, error=e)
                    return
                nxt.add_done_callback(lambda g: _relay_failure(g, out) or _settle(out, value=g.result()))

            fut.add_done_callback(done)

        def submit(unit: Unit) -> Future:
            out: Future = Future()
            decoded = io.submit(decode_unit, unit)
            inferred: Future = Future()
            then(decoded, inferred, model, infer)
            then(inferred, out, io, unit_rows)
            return out

        window = 2 * len(self.segmenters) + 1
        pending: deque = deque()
        try:
            for unit in units:
                pending.append((unit, submit(unit)))
                while len(pending) >= window:
                    u, f = pending.popleft()
                    yield u, f.result()
            while pending:
                u, f = pending.popleft()
                yield u, f.result()
        finally:
            for _, f in pending:
                f.cancel()
            io.shutdown(wait=True, cancel_futures=True)
            model.shutdown(wait=True, cancel_futures=True)


def _relay_failure(f: Future, out: Future) -> bool:
    """If ``f`` failed or was cancelled, pass that on to ``out`` and return True."""
    if f.cancelled():
        _settle(out, error=RuntimeError("the batch run was stopped"))
        return True
    if f.exception() is not None:
        _settle(out, error=f.exception())
        return True
    return False


def _settle(fut: Future, value=None, error=None) -> None:
    """Set ``fut``'s result or exception unless it is done already (cancelled when a run stops)."""
    if fut.done():
        return
    try:
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)
    except Exception:  # noqa: BLE001 - cancelled between the check and the set
        pass
