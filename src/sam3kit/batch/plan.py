"""Deterministic shards of a job's images, and the units (images encoded together) the workers process.

Shard ``k`` holds images ``k * shard_size + 1`` to ``(k + 1) * shard_size`` of the inputs (``image_id`` order), so
the same inputs and shard size always give the same shards. A shard is the unit of output and of resuming; a unit
(``batch_size`` consecutive images of one shard) is the unit of model work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .exemplars import Exemplars, boxes_json
from .inputs import BatchImage
from .table import shard_name


@dataclass(frozen=True)
class Shard:
    """``images`` (consecutive ids) written together to ``name``."""

    index: int
    images: tuple[BatchImage, ...]

    @property
    def name(self) -> str:
        return shard_name(self.index)

    def input_list(self) -> list[list[Any]]:
        """``[image_id, path, file_name]`` per image: what the shard file records."""
        return [[im.image_id, im.path, im.file_name] for im in self.images]

    def inputs_digest(self) -> str:
        return hashlib.sha256(json.dumps(self.input_list(), separators=(",", ":")).encode()).hexdigest()

    def record(self) -> dict[str, Any]:
        """The shard's entry in the manifest's shard list."""
        return {"file": self.name, "images": [self.images[0].image_id, self.images[-1].image_id],
                "count": len(self.images), "inputs_sha256": self.inputs_digest()}


@dataclass(frozen=True)
class Unit:
    """Images of one shard encoded together. ``boxes``: per image, its exemplar boxes as JSON text when the job's
    exemplars are per image (they travel with the images), else None."""

    shard: int
    images: tuple[BatchImage, ...]
    boxes: tuple[Optional[str], ...]

    def __len__(self) -> int:
        return len(self.images)


def plan_shards(images: Sequence[BatchImage], shard_size: int) -> list[Shard]:
    return [Shard(k, tuple(images[i:i + shard_size])) for k, i in enumerate(range(0, len(images), shard_size))]


def units_of(shard: Shard, batch_size: int, exemplars: Optional[Exemplars]) -> list[Unit]:
    """The shard's images in runs of ``batch_size`` (the last one shorter), with their per-image boxes."""
    per_image = exemplars is not None and exemplars.per_image is not None
    out = []
    for i in range(0, len(shard.images), batch_size):
        ims = shard.images[i:i + batch_size]
        boxes = tuple(boxes_json(exemplars.for_image(im.path)) if per_image else None for im in ims)
        out.append(Unit(shard.index, ims, boxes))
    return out


def units_to_json(units: Sequence[Unit]) -> str:
    """Units as JSON text (how a shard's work travels to a Ray actor)."""
    return json.dumps([{"shard": u.shard, "images": [[im.image_id, im.path, im.file_name] for im in u.images],
                        "boxes": list(u.boxes)} for u in units], separators=(",", ":"))


def units_from_json(text: str) -> list[Unit]:
    return [Unit(int(d["shard"]), tuple(BatchImage(int(i), p, n) for i, p, n in d["images"]), tuple(d["boxes"]))
            for d in json.loads(text)]
