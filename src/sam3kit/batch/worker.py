"""The three stages of a batch worker, for one unit (a few images of one shard):

1. ``decode_unit`` (CPU): read the image files; a file that cannot be read is kept as its error.
2. ``Segmenter.infer`` (the model): one encoding of the unit's images (the ViT on all of them at once), then every
   prompt of the job answered on it (``ImagePredictor.segment_batch``); the texts are encoded once per worker
   (``TextFeatureCache``), when the worker starts.
3. ``unit_rows`` (CPU): the results as output rows (``table.py``), masks run-length encoded.

``WorkerSpec`` is what a worker is built from, small and picklable: a Ray actor receives it and loads its own
model. A failure of one image (a corrupt file, boxes that do not fit it) becomes that image's error row; a failure
of the whole unit is retried image by image, so one bad image never costs the others their results.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from ..errors import InputError, Sam3Error
from .exemplars import Box, boxes_from_json
from .plan import Unit

log = logging.getLogger(__name__)

NO_EXEMPLARS = "no exemplar boxes for this image (the exemplar file has no entry for it)"


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build itself.

    model: the checkpoint (a local path, the same on every machine of a cluster, or a Hub id).
    fingerprint: the model's expected ``Sam3Model.fingerprint`` (None: not checked); a worker whose checkpoint
        differs refuses to run rather than mix two models into one output.
    device, dtype, image_size, fast: as ``sam3kit.load`` takes them; threads: torch CPU threads (None: unchanged).
    texts: the prompts' texts in order (empty: one exemplar-only prompt). shared_boxes: exemplar boxes of every
        image (None: none, or per image, carried by the units).
    """

    model: str
    fingerprint: Optional[str]
    device: str
    dtype: str = "fp32"
    image_size: Optional[int] = None
    fast: str = "none"
    threads: Optional[int] = None
    texts: tuple[str, ...] = ()
    shared_boxes: Optional[tuple[Box, ...]] = None
    threshold: float = 0.5
    mask_threshold: float = 0.5
    truncate_text: bool = False
    batch_size: int = 1
    io_threads: int = 2

    @property
    def prompt_labels(self) -> tuple[str, ...]:
        return self.texts if self.texts else ("exemplars",)

    def load_model(self, device: Optional[str] = None):
        """Load the spec's model on ``device`` (default ``self.device``), checking its fingerprint."""
        import sam3kit

        from ..errors import CheckpointError

        try:
            model = sam3kit.load(self.model, device=device or self.device, dtype=self.dtype,
                                 image_size=self.image_size, fast=None if self.fast == "none" else self.fast)
        except (ValueError, ImportError) as e:
            if isinstance(e, Sam3Error):
                raise
            raise InputError(str(e)) from e
        if self.fingerprint is not None and model.fingerprint != self.fingerprint:
            raise CheckpointError(f"{self.model}: this checkpoint (fingerprint {model.fingerprint[:12]}) is not the "
                                  f"one the job was planned with ({self.fingerprint[:12]}); every worker must see "
                                  "the same weights")
        return model


@dataclass
class DecodedUnit:
    """A unit with its pixels: per image an (H, W, 3) uint8 array, or None and the error in ``errors``."""

    unit: Unit
    arrays: list[Optional[np.ndarray]]
    errors: list[Optional[str]]


@dataclass
class InferredUnit:
    """A unit's results: per image its size (or None) and error, and per image and prompt a ``SegmentResult`` or
    the error text of that prompt."""

    unit: Unit
    sizes: list[Optional[tuple[int, int]]]  # (H, W)
    errors: list[Optional[str]]
    results: list[list[Union[Any, str, None]]]
    labels: tuple[str, ...]


def error_text(e: BaseException) -> str:
    """An error as the ``error`` column records it: the message of a sam3kit error, else its type and message."""
    return str(e) if isinstance(e, Sam3Error) else f"{type(e).__name__}: {e}"


def decode_unit(unit: Unit) -> DecodedUnit:
    from ..io.image import load_image

    arrays: list[Optional[np.ndarray]] = []
    errors: list[Optional[str]] = []
    for im in unit.images:
        try:
            arrays.append(np.require(load_image(im.path), requirements="W"))  # torch warns on read-only arrays
            errors.append(None)
        except Exception as e:  # noqa: BLE001 - any failure to read an image is that image's error row
            arrays.append(None)
            errors.append(error_text(e))
    return DecodedUnit(unit, arrays, errors)


class Segmenter:
    """One model replica answering every prompt of a job on one encoding per image.

    Args:
        model: a loaded ``Sam3Model`` (shared read-only between the segmenters of one process on one device).
        spec: the job's prompts and thresholds (``WorkerSpec``).
    """

    def __init__(self, model, spec: WorkerSpec) -> None:
        from ..pipelines.cache import EncodingCache
        from ..pipelines.encoding import EncoderOptions
        from ..pipelines.image import ImagePredictor

        self.model = model
        self.spec = spec
        # each image is seen once: no encoding cache; the ViT runs all the time: its weights stay resident
        self.predictor = ImagePredictor(model, cache=EncodingCache(max_items=0),
                                        encoder_options=EncoderOptions(release_encoder_weights=False))
        self.predictor.texts.max_items = max(self.predictor.texts.max_items, len(spec.texts))
        for text in spec.texts:  # encoded once here; an overlong text stops the worker before any image
            self.predictor.texts.get(text, truncate=spec.truncate_text)

    def infer(self, decoded: DecodedUnit) -> InferredUnit:
        unit = decoded.unit
        n, P = len(unit.images), len(self.spec.prompt_labels)
        sizes: list[Optional[tuple[int, int]]] = [None if a is None else (a.shape[0], a.shape[1])
                                                  for a in decoded.arrays]
        errors = list(decoded.errors)
        results: list[list[Any]] = [[None] * P for _ in range(n)]
        good = [i for i in range(n) if decoded.arrays[i] is not None]
        if good:
            try:
                self._segment(decoded, good, results)
            except Exception as e:  # noqa: BLE001 - isolate the image at fault: retry one by one
                if len(good) == 1:
                    errors[good[0]] = error_text(e)
                else:
                    log.debug("a unit of %d images failed (%s): retrying them one by one", len(good), e)
                    for i in good:
                        try:
                            self._segment(decoded, [i], results)
                        except Exception as e1:  # noqa: BLE001
                            errors[i] = error_text(e1)
        return InferredUnit(unit, sizes, errors, results, self.spec.prompt_labels)

    def _segment(self, decoded: DecodedUnit, idx: list[int], results: list[list[Any]]) -> None:
        """Encode the images ``idx`` of the unit together, then answer every prompt on that encoding; images that
        share their exemplar boxes are answered together."""
        import torch

        from ..pipelines.encoding import ImageState

        spec, unit = self.spec, decoded.unit
        state = self.predictor.encoder.encode_arrays([decoded.arrays[i] for i in idx])
        groups: dict[Optional[str], list[int]] = {}
        for j, i in enumerate(idx):
            groups.setdefault(unit.boxes[i], []).append(j)
        for key, members in groups.items():
            boxes = spec.shared_boxes if spec.shared_boxes is not None else boxes_from_json(key)
            if len(members) == len(idx):
                sub = state
            else:
                sel = torch.tensor(members, device=state.trunk.device)
                sub = ImageState(self.model, state.trunk.index_select(0, sel),
                                 [state.transforms[j] for j in members])
            self.predictor.set_state(sub)
            for k in range(len(spec.prompt_labels)):
                text = spec.texts[k] if spec.texts else None
                if text is None and boxes is None:
                    for j in members:
                        results[idx[j]][k] = NO_EXEMPLARS
                    continue
                kw = {}
                if boxes is not None:
                    kw = {"boxes": [list(b[:4]) for b in boxes], "box_labels": [b[4] for b in boxes]}
                try:
                    out = self.predictor.segment_batch(text=text, threshold=spec.threshold,
                                                       mask_threshold=spec.mask_threshold,
                                                       truncate_text=spec.truncate_text, **kw)
                except InputError as e:  # this prompt does not fit these images (boxes): their error, per prompt
                    if len(members) > 1:
                        raise
                    results[idx[members[0]]][k] = error_text(e)
                    continue
                for j, res in zip(members, out):
                    results[idx[j]][k] = res
        self.predictor.reset_image()


def unit_rows(inferred: InferredUnit):
    """The output rows of a unit (an Arrow table, in row order: image, prompt, instance)."""
    from ..io.rle import encode_rle
    from .table import RowBuilder

    rows = RowBuilder()
    for i, im in enumerate(inferred.unit.images):
        size = inferred.sizes[i]
        h, w = size if size is not None else (None, None)
        if inferred.errors[i] is not None:
            rows.add(im.image_id, im.path, width=w, height=h, error=inferred.errors[i])
            continue
        for k, label in enumerate(inferred.labels):
            res = inferred.results[i][k]
            base = dict(width=w, height=h, prompt_index=k, prompt=label)
            if isinstance(res, str) or res is None:
                rows.add(im.image_id, im.path, **base, error=res or "not processed (internal error)")
                continue
            presence = float(res.presence)
            if len(res) == 0:
                rows.add(im.image_id, im.path, **base, presence=presence)
                continue
            for q in range(len(res)):
                mask = res.masks[q]
                rows.add(im.image_id, im.path, **base, presence=presence, instance=q, score=float(res.scores[q]),
                         box=res.boxes[q], area=int(np.count_nonzero(mask)), rle=encode_rle(mask))
    return rows.table()
