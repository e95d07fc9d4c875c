"""The ``local`` engine: this process, ``workers`` model threads, decoding and row encoding overlapped with the
model in a small thread pool (``pipeline.py``).

On one device the workers share one model (its weights are read-only; each worker has its own predictor and text
cache). With ``device="cuda"`` and several GPUs, worker ``i`` loads its own copy on GPU ``i`` (modulo their number).
On a CPU one worker with all cores is usually fastest at the released size; several workers pay off with many
small images or several GPUs.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Optional

from .collector import ShardCollector, ShardStats
from .exemplars import Exemplars
from .job import Job
from .pipeline import Pipeline
from .plan import units_of
from .worker import Segmenter, WorkerSpec

log = logging.getLogger(__name__)


def run_local(job: Job, spec: WorkerSpec, workers: int, exemplars: Optional[Exemplars], *, model=None,
              on_images: Callable[[int], None] = lambda n: None,
              on_shard: Optional[Callable[[ShardStats], None]] = None,
              stage: Callable[[str], None] = lambda text: None) -> ShardCollector:
    """Compute ``job.todo``, writing each shard when complete; returns the collector (what was written).

    ``model``: a loaded model to use instead of loading ``spec.model``. ``on_images(n)``: n more images done.
    ``stage(text)``: what is happening (for a status line).
    """
    if spec.threads is not None:
        from ..cli.model_args import apply_threads

        apply_threads(spec.threads)
    models = _models(spec, workers, model, stage)
    stage("encoding the prompts")
    segmenters = [Segmenter(m, spec) for m in models]
    collector = ShardCollector(job, on_shard)
    units = (u for s in job.todo for u in units_of(s, spec.batch_size, exemplars))
    stage(f"segmenting ({workers} worker{'s' if workers != 1 else ''}, {spec.device})")
    with contextlib.closing(Pipeline(segmenters, spec.io_threads).run(units)) as results:
        for unit, table in results:
            collector.add(table)
            on_images(len(unit))
    return collector


def _models(spec: WorkerSpec, workers: int, model, stage: Callable[[str], None]) -> list:
    """One model per worker: a given or loaded model shared by all, or one per GPU for ``cuda`` with several."""
    if model is not None:
        return [model] * workers
    import torch

    if spec.device == "cuda" and workers > 1 and torch.cuda.device_count() > 1:
        n = torch.cuda.device_count()
        stage(f"loading {spec.model} on {min(n, workers)} GPUs")
        loaded = {i % n: None for i in range(workers)}
        for g in loaded:
            loaded[g] = spec.load_model(f"cuda:{g}")
        return [loaded[i % n] for i in range(workers)]
    stage(f"loading {spec.model} on {spec.device} ({spec.dtype})")
    return [spec.load_model()] * workers
