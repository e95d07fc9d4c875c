"""``run``: a batch job from its inputs to its finished shards, on either engine."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from ..errors import InputError
from .collector import ShardStats
from .options import BatchOptions

log = logging.getLogger(__name__)

Progress = Union[None, bool, Callable[[int], None]]
SEGMENTING = "segmenting"  # the stage at which the engines start on the images


@dataclass(frozen=True)
class BatchSummary:
    """What a ``run`` did.

    images: images in the job; shards: shards in the job; kept: shards finished before this run (skipped);
    written: shards this run wrote; processed: images this run processed; instances: instances it found;
    errors: error rows it wrote (images or prompts that failed), with up to a few of them in ``error_samples``;
    complete: every shard of the job is finished; seconds: this run's time; engine and placement: how it ran.
    """

    out: Path
    images: int
    shards: int
    kept: int
    written: int
    processed: int
    instances: int
    errors: int
    error_samples: tuple[str, ...]
    complete: bool
    seconds: float
    engine: str
    placement: dict

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def run(inputs: Union[str, Path, Sequence[Union[str, Path]]], model: Any, out: Union[str, Path],
        options: BatchOptions, *, path_column: str = "path", progress: Progress = None,
        stage: Optional[Callable[[str], None]] = None,
        on_shard: Optional[Callable[[ShardStats], None]] = None) -> BatchSummary:
    """Segment every image of ``inputs`` with every prompt of ``options`` into the job folder ``out``.

    Args:
        inputs: folders, glob patterns, lists of paths (.txt) or tables (.parquet, .csv) with a ``path_column``
            (``sam3kit.batch.inputs``), or image files; one or a list.
        model: a checkpoint (local path or Hub id), or, for the local engine, a loaded ``Sam3Model``.
        out: the job folder: ``manifest.json`` and ``shards/shard-NNNNN.parquet`` (``sam3kit.batch.table``).
        options: prompts, thresholds, engine and sizes (``BatchOptions``).
        progress: a progress bar on stderr (True; None: when stderr is a terminal; False: none), or a function
            called with the number of images each time some are finished.
        stage: called with a short text whenever the run enters a new stage (loading, starting Ray, ...).
        on_shard: called with a ``ShardStats`` right after each shard file is written (to upload it, ...).
    Returns:
        a ``BatchSummary``. A re-run of a finished or interrupted job computes only the shards that are missing;
        a job folder holding another job is refused (``OutputError``) unless ``options.force``.
    """
    from .. import __version__
    from .inputs import collect
    from .job import prepare
    from .table import require_pyarrow
    from .worker import WorkerSpec

    require_pyarrow()
    if options.engine == "ray":
        from .ray_engine import require_ray

        require_ray()  # before anything is written
    started = time.monotonic()
    out = Path(out).expanduser()
    specs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    found = collect(specs, path_column=path_column, exclude=[out])
    loaded, source, record = _model_identity(model, options)
    opts = options.result_record()
    if loaded is not None:  # what the model object was built with
        opts.update(dtype=_dtype_name(loaded.dtype), image_size=loaded.config.image_size)
    if options.engine == "ray" and loaded is not None:
        raise InputError("the ray engine loads the model in its workers: pass the checkpoint (a path or a Hub id), "
                         "not a loaded model")
    _check_texts(loaded, source, options)  # an overlong text stops the job before anything is written
    _warn_unmatched_exemplars(options, found)
    runtime = {"engine": options.engine, "workers": options.workers, "batch_size": options.batch_size,
               "device": options.device, "sam3kit": __version__}
    job = prepare(out, found, [str(s) for s in specs], record, opts, options.shard_size, runtime,
                  force=options.force)
    spec = WorkerSpec(
        model=source or "", fingerprint=record["fingerprint"], device=options.device, dtype=options.dtype,
        image_size=options.image_size, fast=options.fast, threads=options.threads, texts=options.texts,
        shared_boxes=options.exemplars.shared if options.exemplars is not None else None,
        threshold=options.threshold, mask_threshold=options.mask_threshold, truncate_text=options.truncate_text,
        batch_size=options.batch_size or 1, io_threads=options.io_threads)
    todo_images = sum(len(s.images) for s in job.todo)
    written: list[ShardStats] = []
    placement: dict = {}
    if job.todo:
        with _progress(progress, todo_images, stage) as bar:
            if options.engine == "ray":
                from .ray_engine import run_ray

                collector, placement = run_ray(job, spec, options.workers, options.batch_size, options.exemplars,
                                               device=options.device, threads=options.threads,
                                               on_images=bar.advance, on_shard=on_shard, stage=bar.stage)
            else:
                from .local import run_local

                spec, placement = _local_spec(spec, options, loaded)
                collector = run_local(job, spec, placement["workers"], options.exemplars, model=loaded,
                                      on_images=bar.advance, on_shard=on_shard, stage=bar.stage)
            written = collector.written
    instances = sum(s.instances for s in written)
    errors = sum(s.errors for s in written)
    summary = BatchSummary(out, len(found.images), len(job.shards), len(job.kept), len(written),
                           sum(s.images for s in written), instances, errors,
                           tuple(x for s in written for x in s.error_samples)[:5],
                           len(job.kept) + len(written) == len(job.shards), time.monotonic() - started,
                           options.engine, placement)
    job.write_manifest(status="complete" if summary.complete else "running",
                       runtime={**runtime, **placement},
                       last_run={"shards_written": summary.written, "shards_kept": summary.kept,
                                 "images": summary.processed, "instances": instances, "error_rows": errors,
                                 "seconds": round(summary.seconds, 3)})
    return summary


def _model_identity(model: Any, options: BatchOptions) -> tuple[Any, Optional[str], dict]:
    """(loaded model or None, the source workers load, the manifest's model record) for ``model``."""
    from ..model.sam3 import Sam3Model

    if isinstance(model, Sam3Model):
        return model, None, {"source": "a model object", "fingerprint": model.fingerprint}
    if not isinstance(model, (str, Path)):
        raise InputError(f"model must be a checkpoint path, a Hub id or a loaded Sam3Model, got "
                         f"{type(model).__name__}")
    from ..loading import resolve
    from ..weights.fingerprint import checkpoint_fingerprint

    path = resolve(str(model))  # a Hub id is downloaded (or found in the cache) here, on the driver
    local = Path(str(model)).expanduser().exists()
    fingerprint = checkpoint_fingerprint(path, image_size=options.image_size)
    source = os.path.abspath(Path(str(model)).expanduser()) if local else str(model)
    return None, source, {"source": source, "fingerprint": fingerprint}


def _local_spec(spec, options: BatchOptions, loaded) -> tuple[Any, dict]:
    from dataclasses import replace

    from ..loading import resolve_device

    device = str(loaded.device) if loaded is not None else resolve_device(options.device)
    batch = options.batch_size or (4 if device.startswith("cuda") else 1)
    workers = options.workers or 1
    return replace(spec, device=device, batch_size=batch), {"device": device, "workers": workers,
                                                            "batch_size": batch}


def _check_texts(loaded, source: Optional[str], options: BatchOptions) -> None:
    """Refuse an overlong text (``InputError``) with the tokenizer the workers will use, before any of them starts
    (they check again when they encode it)."""
    if not options.texts:
        return
    from ..pipelines.text import TextFeatureCache

    if loaded is not None:
        texts = TextFeatureCache(loaded)
    else:
        from ..loading import _find_tokenizer, resolve
        from ..weights.reader import locate

        texts = TextFeatureCache(None, _find_tokenizer(locate(resolve(source)).root))
    for t in options.texts:
        texts.check(t, truncate=options.truncate_text)


def _warn_unmatched_exemplars(options: BatchOptions, found) -> None:
    ex = options.exemplars
    if ex is None or ex.per_image is None:
        return
    paths = {im.path for im in found.images}
    missing = [p for p in ex.paths() if p not in paths]
    if missing:
        log.warning("%d of the %d images of %s are not among the inputs (e.g. %s)", len(missing), len(ex.paths()),
                    ex.source or "the exemplars", missing[0])


def _dtype_name(dtype) -> str:
    import torch

    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


class _progress:
    """The progress sink of a run: the status line and tqdm bar of ``cli.report.Reporter`` on stderr, a user's
    function, or nothing. While the model loads a status line says so; the bar (images done, images/s, time left)
    starts with the stage "segmenting ...", so its rate does not count the loading (on Ray it counts the actors'
    start). Counts never go past ``total`` (a Ray actor that is restarted redoes its shard)."""

    def __init__(self, progress: Progress, total: int, stage: Optional[Callable[[str], None]]) -> None:
        self.total, self.done = total, 0
        self.fn = progress if callable(progress) else None
        self.stage_fn = stage
        self.drawing = not (callable(progress) or progress is False)
        self.draw = True if progress is True else None  # None: when stderr is a terminal
        self.reporter = self._reporter(0) if self.drawing else None
        self.bar = False
        self._lock = threading.RLock()

    def _reporter(self, total: int):
        from ..cli.report import Reporter

        return Reporter(total, enabled=self.draw, tick=1.0 if total == 0 else 0, unit="image")

    def __enter__(self) -> "_progress":
        return self

    def stage(self, text: str) -> None:
        with self._lock:
            if text.startswith(SEGMENTING) and self.drawing and not self.bar and self.total > 1:
                self.reporter.close()  # the status line gives way to the bar
                self.reporter, self.bar = self._reporter(self.total), True
        if self.stage_fn is not None:
            self.stage_fn(text)
        elif self.reporter is not None:
            self.reporter.stage(text)

    def advance(self, n: int) -> None:
        with self._lock:
            n = max(0, min(int(n), self.total - self.done))
            self.done += n
            if n and self.reporter is not None:
                for _ in range(n):
                    self.reporter.advance()
        if n and self.fn is not None:
            self.fn(n)

    def __exit__(self, *exc: Any) -> None:
        if self.reporter is not None:
            self.reporter.close()
