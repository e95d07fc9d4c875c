"""Masklet confirmation (official ``update_masklet_confirmation_status``): an object is confirmed once detections
matched it on ``masklet_confirmation_consecutive_det_thresh`` consecutive frames (its first frame counts);
unconfirmed objects are hidden in the outputs. Stateless: the per-object state is passed in and returned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class Confirmation:
    """One object's confirmation state: ``confirmed`` and the current run of matched frames."""

    confirmed: bool = False
    consecutive: int = 0


def update_confirmation(state: dict[int, Confirmation], obj_ids: Iterable[int], matched: dict[int, np.ndarray],
                        new_ids: np.ndarray, threshold: int) -> dict[int, Confirmation]:
    """The confirmation of the tracks ``obj_ids`` after a frame (tracks not in ``obj_ids`` are dropped, new ones
    start unconfirmed). ``matched``: detection index -> matched track ids; ``new_ids``: the frame's new objects."""
    hit = set(new_ids.tolist())
    for ids in matched.values():
        hit.update(ids.tolist())
    out = {}
    for oid in obj_ids:
        prev = state.get(oid, Confirmation())
        run = prev.consecutive + 1 if oid in hit else 0
        out[oid] = Confirmation(confirmed=prev.confirmed or run >= threshold, consecutive=run)
    return out
