"""Exemplar boxes of a batch job: the same boxes on every image, or boxes per image.

The file of ``--exemplars FILE`` is JSON, one of:

- a list of boxes, used on every image: ``[[x1, y1, x2, y2], [x1, y1, x2, y2, 0], ...]``;
- an object mapping image paths to their boxes: ``{"img/a.jpg": [[10, 20, 110, 220]], ...}``. Relative paths are
  relative to the folder of the JSON file; an image without an entry gets none.

A box is pixel xyxy of its image (top-left, then bottom-right), with an optional fifth value, the label: 1 a
positive exemplar (the default), 0 a negative one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from ..errors import InputError

Box = tuple[float, float, float, float, int]


@dataclass(frozen=True)
class Exemplars:
    """Exemplar boxes, either ``shared`` (every image) or ``per_image`` (absolute image path -> its boxes, sorted by
    path). ``source``: the file they were read from, if any."""

    shared: Optional[tuple[Box, ...]] = None
    per_image: Optional[tuple[tuple[str, tuple[Box, ...]], ...]] = None
    source: Optional[str] = None

    def __post_init__(self) -> None:
        if (self.shared is None) == (self.per_image is None):
            raise InputError("Exemplars holds either shared boxes or boxes per image")

    # ------------------------------------------------------------------ reading
    @classmethod
    def parse(cls, value: Any) -> "Exemplars":
        """A JSON file path (module docstring), a list of boxes (every image) or a dict image path -> boxes
        (relative paths taken from the current folder)."""
        if isinstance(value, Exemplars):
            return value
        if isinstance(value, (str, Path)):
            return cls.read(value)
        if isinstance(value, Mapping):
            return cls._from_mapping(value, Path.cwd(), "exemplars")
        if isinstance(value, (list, tuple)):
            return cls(shared=_boxes(value, "exemplars"))
        raise InputError(f"exemplars must be a JSON file, a list of boxes or a dict image path -> boxes, got "
                         f"{type(value).__name__}")

    @classmethod
    def read(cls, path: Union[str, Path]) -> "Exemplars":
        """Read an exemplar file (module docstring). ``InputError`` says what is wrong with it."""
        p = Path(path).expanduser()
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise InputError(f"--exemplars {path}: {e.strerror or e}") from None
        except ValueError as e:
            raise InputError(f"--exemplars {path} is not valid JSON ({e})") from None
        if isinstance(data, list):
            return cls(shared=_boxes(data, f"--exemplars {path}"), source=str(p))
        if isinstance(data, dict):
            return cls._from_mapping(data, p.parent, f"--exemplars {path}", source=str(p))
        raise InputError(f"--exemplars {path} must hold a list of boxes (every image) or an object mapping image "
                         f"paths to boxes, got a JSON {type(data).__name__}")

    @classmethod
    def _from_mapping(cls, data: Mapping, base: Path, what: str, source: Optional[str] = None) -> "Exemplars":
        entries: dict[str, tuple[Box, ...]] = {}
        for key, boxes in data.items():
            full = os.path.abspath(os.path.join(base, os.path.expanduser(str(key))))
            entries[full] = _boxes(boxes, f"{what}, image {key!r}")
        return cls(per_image=tuple(sorted(entries.items())), source=source)

    # ------------------------------------------------------------------ use
    @functools.cached_property
    def _lookup(self) -> dict[str, tuple[Box, ...]]:
        return dict(self.per_image or ())

    def for_image(self, path: str) -> Optional[tuple[Box, ...]]:
        """The boxes of the image at ``path`` (absolute), or None."""
        if self.shared is not None:
            return self.shared
        return self._lookup.get(path)

    def paths(self) -> list[str]:
        """The images named by per-image exemplars (none for shared boxes)."""
        return [p for p, _ in self.per_image or ()]

    def record(self) -> dict[str, Any]:
        """What the manifest records: the boxes themselves when shared, else the file, the number of images and a
        SHA-256 of the entries (paths and boxes)."""
        if self.shared is not None:
            return {"boxes": [list(b) for b in self.shared]}
        digest = hashlib.sha256(json.dumps([[p, [list(b) for b in bs]] for p, bs in self.per_image],
                                           separators=(",", ":")).encode()).hexdigest()
        return {"file": self.source, "images": len(self.per_image), "sha256": digest}


def boxes_json(boxes: Optional[Sequence[Box]]) -> Optional[str]:
    """Boxes as the compact JSON text units carry (None stays None)."""
    return None if boxes is None else json.dumps([list(b) for b in boxes], separators=(",", ":"))


def boxes_from_json(text: Optional[str]) -> Optional[tuple[Box, ...]]:
    return None if text is None else tuple((b[0], b[1], b[2], b[3], int(b[4])) for b in json.loads(text))


def _boxes(value: Any, what: str) -> tuple[Box, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(f"{what}: expected a non-empty list of boxes [x1, y1, x2, y2] or [x1, y1, x2, y2, label]")
    return tuple(_box(b, what) for b in value)


def _box(b: Any, what: str) -> Box:
    example = "[x1, y1, x2, y2] or [x1, y1, x2, y2, label] in pixels"
    if not isinstance(b, (list, tuple)) or len(b) not in (4, 5):
        raise InputError(f"{what}: box {b!r} must be {example}")
    try:
        v = [float(x) for x in b]
    except (TypeError, ValueError):
        raise InputError(f"{what}: box {b!r} must be numbers: {example}") from None
    if not all(math.isfinite(x) for x in v):
        raise InputError(f"{what}: box {b!r} must be finite numbers")
    if v[2] <= v[0] or v[3] <= v[1]:
        raise InputError(f"{what}: box {b!r} must have x1 < x2 and y1 < y2 (top-left, then bottom-right)")
    label = v[4] if len(v) == 5 else 1.0
    if label not in (0.0, 1.0):
        raise InputError(f"{what}: the label of box {b!r} must be 1 (positive) or 0 (negative)")
    return v[0], v[1], v[2], v[3], int(label)
