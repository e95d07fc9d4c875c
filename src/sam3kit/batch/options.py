"""``BatchOptions``: what a batch job asks (prompts, thresholds, model runtime) and how it runs (engine, workers,
batch and shard sizes).

Only the first group decides the rows of the output, so only it is compared when a job is resumed
(``BatchOptions.result_record``); the engine, the number of workers, the batch size and the device may change
between runs of one job (results agree up to floating-point rounding across batch sizes and devices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..errors import InputError
from .exemplars import Exemplars

ENGINES = ("local", "ray")
DEFAULT_SHARD_SIZE = 256
"""Images per shard when neither the options nor an earlier run of the job say otherwise. A shard is the unit that is
written at once and skipped on a re-run: at a GPU's rate of a few images a second it is a minute or two of work (what
a kill loses per worker), and a million images make about 3,900 files. On a CPU at the released size (tens of seconds
an image) a smaller one (``shard_size=16``) loses less."""


@dataclass(frozen=True)
class BatchOptions:
    """A batch job's options.

    Prompts (every image gets all of them, answered on one encoding of the image):
        texts: noun phrases, one concept each, in order (repeats dropped).
        exemplars: exemplar boxes (``Exemplars``, or what ``Exemplars.parse`` reads: a JSON file, a list of
            boxes for every image, or a dict image path -> boxes). With several texts there may be none; without
            a text the boxes alone are the one prompt ("exemplars").
        threshold: keep instances whose score (class x presence) is above this, in [0, 1].
        mask_threshold: mask pixels whose probability is above this, in [0, 1].
        truncate_text: cut a text longer than the model's context (as the official model does) instead of
            refusing it.

    Model runtime (also part of what the rows depend on):
        dtype: "fp32", "fp16" or "bf16". image_size: run the model at N x N (None: the checkpoint's).
        fast: "none" or "int8" (the int8 ViT on the CPU).

    How it runs (free to change between runs of one job):
        engine: "local" (this process) or "ray" (Ray Data, on the cluster of ``RAY_ADDRESS`` or a local one).
        workers: model workers (local: threads, one model per GPU when several GPUs are used; ray: actors).
            None: 1 for local; for ray, one per GPU of the cluster when it runs on GPUs, else one per node.
        batch_size: images encoded together. None: 1 on the CPU, 4 on a GPU.
        shard_size: images per shard (``DEFAULT_SHARD_SIZE``); None: that of the job's earlier run, if any.
        device: "auto", "cpu", "cuda", "cuda:N", "mps" (ray: "auto" is CUDA when the cluster has GPUs).
        threads: torch CPU threads per worker (None: torch's choice locally; for ray the CPUs an actor reserves).
        io_threads: threads that decode images and encode results while the model runs (per worker process).
        force: redo every shard, replacing the outputs of an earlier run with other options or another model.
    """

    texts: tuple[str, ...] = ()
    exemplars: Optional[Exemplars] = None
    threshold: float = 0.5
    mask_threshold: float = 0.5
    truncate_text: bool = False
    dtype: str = "fp32"
    image_size: Optional[int] = None
    fast: str = "none"
    engine: str = "local"
    workers: Optional[int] = None
    batch_size: Optional[int] = None
    shard_size: Optional[int] = None
    device: str = "auto"
    threads: Optional[int] = None
    io_threads: int = 2
    force: bool = False

    def __post_init__(self) -> None:
        from ..pipelines.prompts import check_threshold

        texts = (self.texts,) if isinstance(self.texts, str) else tuple(self.texts or ())
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise InputError(f"texts must be non-empty strings (noun phrases such as 'red car'), got {texts!r}")
        object.__setattr__(self, "texts", tuple(dict.fromkeys(texts)))
        ex = self.exemplars
        if ex is not None and not isinstance(ex, Exemplars):
            object.__setattr__(self, "exemplars", Exemplars.parse(ex))
        if not self.texts and self.exemplars is None:
            raise InputError("no prompt: give at least one text (--text) or exemplar boxes (--exemplars)")
        if self.exemplars is not None and len(self.texts) > 1:
            raise InputError("exemplar boxes go with one text (or none): with several texts it is unclear which "
                             "concept they show; run once per text")
        object.__setattr__(self, "threshold", check_threshold(self.threshold, "threshold"))
        object.__setattr__(self, "mask_threshold", check_threshold(self.mask_threshold, "mask_threshold"))
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine {self.engine!r}: use 'local' or 'ray'")
        if self.dtype not in ("fp32", "fp16", "bf16"):
            raise InputError(f"unknown dtype {self.dtype!r}: use fp32, fp16 or bf16")
        if self.fast not in ("none", "int8"):
            raise InputError(f"unknown fast mode {self.fast!r}: use 'none' or 'int8'")
        for name in ("workers", "batch_size", "shard_size", "threads", "image_size"):
            _positive(getattr(self, name), name, optional=True)
        _positive(self.io_threads, "io_threads", optional=False)

    @property
    def prompt_labels(self) -> tuple[str, ...]:
        """The prompts' names in order (the ``prompt`` column): the texts, or "exemplars" for boxes alone."""
        return self.texts if self.texts else ("exemplars",)

    def result_record(self) -> dict[str, Any]:
        """Everything the rows depend on besides the model and the images, as JSON values (the manifest's
        "options"; a re-run with a different record is refused without ``force``). ``truncate_text`` is left out:
        it changes nothing for texts that fit, and without it a text that does not fit stops the job."""
        from .. import __version__

        return {"sam3kit": __version__, "texts": list(self.texts),
                "exemplars": self.exemplars.record() if self.exemplars is not None else None,
                "threshold": self.threshold, "mask_threshold": self.mask_threshold, "dtype": self.dtype,
                "image_size": self.image_size, "fast": self.fast}


def _positive(value: Any, name: str, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a whole number >= 1{' or None' if optional else ''}, got {value!r}")

