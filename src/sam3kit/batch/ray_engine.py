"""The ``ray`` engine: the shards to do as a Ray Data dataset, one model actor per worker.

``ray.init()`` connects to the cluster of ``RAY_ADDRESS`` when it is set (``ray start --head`` on a machine, then
``RAY_ADDRESS=host:6379``), else starts a local Ray instance for the run (and stops it at the end). A Ray session
already open in the calling process is used as it is.

The dataset is the list of shards to do (``ray.data.from_items``, one row per shard: its units as JSON), mapped
with ``map_batches`` through ``ShardWorker``, a callable class: each actor loads the model once (checking its
fingerprint against the driver's, so no node mixes in other weights) and encodes the job's texts once, then
runs a shard's units through the same pipeline as the local engine (decoding and row encoding overlapped with the
model in the actor's thread pool) and returns the shard's rows. The pool has ``workers`` actors
(``ActorPoolStrategy(size=workers)``), each reserving ``num_gpus=1`` when the job runs on CUDA and ``num_cpus``
CPUs. The driver writes each shard file as its rows arrive (the output folder needs to be on the driver only; the
images and the checkpoint must be readable at the same paths by every node, or the model be a Hub id). Actors add
the images they finish to a small counter actor, which the driver polls for the progress bar.

Requires the ``ray`` extra (``pip install 'sam3kit[ray]'``); sam3kit must be installed on every node.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from dataclasses import replace
from typing import Callable, Optional

from ..errors import InputError, Sam3Error
from .collector import ShardCollector, ShardStats
from .exemplars import Exemplars
from .job import Job
from .plan import units_of, units_to_json
from .worker import WorkerSpec

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def require_ray():
    """The ``ray`` module with Ray Data, or ``InputError`` naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--engine ray needs Ray Data: pip install 'sam3kit[ray]' (or pip install 'ray[data]')"
                         ) from None
    return ray


class ShardWorker:
    """The callable class of ``map_batches``: one model per actor; each call computes the shards of its batch.

    Args:
        spec: the job's worker spec (model, prompts, thresholds, device, threads).
        counter: the progress counter actor (``add(n)``), or None.
    """

    def __init__(self, spec: WorkerSpec, counter=None) -> None:
        from .pipeline import Pipeline
        from .worker import Segmenter

        if spec.threads is not None:
            import torch

            torch.set_num_threads(spec.threads)
        self.pipeline = Pipeline([Segmenter(spec.load_model(), spec)], spec.io_threads)
        self.counter = counter

    def __call__(self, batch):
        """``batch``: an Arrow table with rows ``{"shard": int, "units": JSON}`` -> the rows of those shards."""
        import contextlib

        import pyarrow as pa

        from .plan import units_from_json

        tables = []
        for text in batch.column("units").to_pylist():
            with contextlib.closing(self.pipeline.run(units_from_json(text))) as results:
                for unit, table in results:
                    tables.append(table)
                    if self.counter is not None:
                        self.counter.add.remote(len(unit))
        return pa.concat_tables(tables)


class _Counter:
    """Images finished by the actors since the driver last asked."""

    def __init__(self) -> None:
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


def run_ray(job: Job, spec: WorkerSpec, workers: Optional[int], batch_size: Optional[int],
            exemplars: Optional[Exemplars], *, device: str = "auto", threads: Optional[int] = None,
            on_images: Callable[[int], None] = lambda n: None,
            on_shard: Optional[Callable[[ShardStats], None]] = None,
            stage: Callable[[str], None] = lambda text: None) -> tuple[ShardCollector, dict]:
    """Compute ``job.todo`` on Ray (module docstring); returns the collector and how it ran (device, workers,
    CPUs and GPUs per actor, batch size, the cluster's address)."""
    ray = require_ray()
    started = _connect(ray, stage)
    with warnings.catch_warnings():  # Ray's context warns about its own deprecated fields when it is made
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    bars, ctx.enable_progress_bars = ctx.enable_progress_bars, False  # ours is drawn from the counter
    # on the terminal only: Ray Data's session log file keeps everything
    consoles = [h for h in logging.getLogger("ray.data").handlers if isinstance(h, logging.StreamHandler)
                and getattr(h, "stream", None) in (sys.stderr, sys.stdout)]
    for h in consoles:
        h.addFilter(_quiet_progress)
    try:
        plan = _placement(ray, device, workers, threads, len(job.todo))
        spec = replace(spec, device=plan["device"], threads=plan["cpus_per_worker"],
                       batch_size=batch_size or (4 if plan["device"].startswith("cuda") else 1))
        plan["batch_size"] = spec.batch_size
        collector = ShardCollector(job, on_shard)
        counter = ray.remote(num_cpus=0)(_Counter).remote()
        rows = [{"shard": s.index, "units": units_to_json(units_of(s, spec.batch_size, exemplars))}
                for s in job.todo]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map_batches(ShardWorker, fn_constructor_kwargs={"spec": spec, "counter": counter}, batch_size=1,
                            batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=plan["workers"]),
                            num_cpus=plan["cpus_per_worker"], num_gpus=plan["gpus_per_worker"])
        stage(f"segmenting on Ray ({plan['workers']} worker{'s' if plan['workers'] != 1 else ''}, {plan['device']})")
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(ray, counter, stop, on_images), daemon=True,
                                  name="sam3kit-ray-progress")
        poller.start()
        try:
            for block in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                collector.add(block)
        except Exception as e:  # noqa: BLE001 - a worker's sam3kit error is the user's to see, without Ray's frames
            cause = _sam3_cause(e)
            if cause is not None:
                raise cause from None
            raise
        finally:
            stop.set()
            poller.join()
        on_images(ray.get(counter.take.remote()))
        if collector.missing:
            raise RuntimeError(f"Ray returned no rows for shards {collector.missing[:5]}")
        return collector, plan
    finally:
        ctx.enable_progress_bars = bars
        for h in consoles:
            h.removeFilter(_quiet_progress)
        if started:
            ray.shutdown()


def _quiet_progress(record: logging.LogRecord) -> bool:
    """Ray Data's own progress (lines every few seconds without a terminal, and the note that its bars are off):
    the driver draws one bar instead. Its warnings and errors pass."""
    return record.levelno >= logging.WARNING and not record.getMessage().startswith("Progress bars disabled")


def _connect(ray, stage: Callable[[str], None]) -> bool:
    """Connect to the cluster (module docstring); True when this call started the session (to stop it after)."""
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS")
    stage(f"connecting to Ray at {address}" if address else "starting a local Ray instance")
    kwargs = {"logging_level": logging.WARNING, "log_to_driver": False}
    if not address:
        kwargs["include_dashboard"] = False
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError) as e:
        if not address:
            raise
        raise InputError(f"cannot connect to the Ray cluster at RAY_ADDRESS={address} ({e}); start it with "
                         "'ray start --head', or unset RAY_ADDRESS to run a local Ray instance") from None
    return True


def _placement(ray, device: str, workers: Optional[int], threads: Optional[int], shards: int) -> dict:
    """Where the actors go: device, number of workers, CPUs and GPUs each; ``InputError`` when it cannot fit."""
    res = ray.cluster_resources()
    gpus, cpus = float(res.get("GPU", 0)), float(res.get("CPU", 0))
    if device == "auto":
        device = "cuda" if gpus >= 1 else "cpu"
    cuda = device.startswith("cuda")
    if cuda:
        if gpus < 1:
            raise InputError(f"--device {device}: the Ray cluster has no GPU (resources: {cpus:g} CPUs); use "
                             "--device cpu")
        device = "cuda"  # Ray gives each actor its GPU as device 0
    alive = [n for n in ray.nodes() if n.get("Alive")]
    n = workers or (int(gpus) if cuda else max(1, len(alive)))
    n = max(1, min(n, shards))
    smallest = min((int((node.get("Resources") or {}).get("CPU", 0)) for node in alive), default=int(cpus))
    per_cpu = threads or (1 if cuda else max(1, min(int(cpus // n), smallest)))  # an actor fits on any node
    if n * per_cpu > cpus:
        raise InputError(f"{n} Ray workers of {per_cpu} CPUs each do not fit the cluster's {cpus:g} CPUs; give "
                         "fewer --workers or --threads")
    if cuda and n > gpus:
        raise InputError(f"{n} Ray workers of one GPU each do not fit the cluster's {gpus:g} GPUs; give fewer "
                         "--workers")
    return {"device": device, "workers": n, "cpus_per_worker": per_cpu, "gpus_per_worker": 1 if cuda else 0,
            "cluster": {"cpus": cpus, "gpus": gpus, "nodes": len(alive)}}


def _poll(ray, counter, stop: threading.Event, on_images: Callable[[int], None]) -> None:
    while not stop.wait(POLL_SECONDS):
        try:
            n = ray.get(counter.take.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - a slow answer only delays the bar
            continue
        if n:
            on_images(n)


def _sam3_cause(e: BaseException) -> Optional[Sam3Error]:
    """The sam3kit error a worker raised, from the chain of Ray's wrappers (a task error carries the exception
    itself; an actor that failed to start only its text, whose last "sam3kit.errors.X: message" line is taken),
    or None."""
    import re

    from .. import errors

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        inner = getattr(e, "cause", None)
        if isinstance(inner, Sam3Error):
            return inner
        found = re.findall(r"sam3kit\.errors\.(\w+): (.+)", getattr(e, "error_msg", None) or str(e))
        if found:
            cls = getattr(errors, found[-1][0], None)
            if isinstance(cls, type) and issubclass(cls, Sam3Error):
                return cls(found[-1][1].strip())
        e = inner if isinstance(inner, BaseException) else (e.__cause__ or e.__context__)
    return None
