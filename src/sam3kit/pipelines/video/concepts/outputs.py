"""What a frame reports in a session with concepts (official ``_postprocess_output``) and the hot-start output
buffer (official ``Sam3VideoInference.propagate_in_video``). Stateless functions and one small buffer of frame
indices: the masks wait in the session's run-length encoded result store, not here."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ....io.rle import decode_rle
from ..results import FrameResult, StoredObject, boxes_from_masks
from .overlap import object_wise_non_overlap


def assemble(frame: int, records: dict[int, StoredObject], order: list[int], always: set[int],
             frame_size: tuple[int, int], *, with_logits: bool = False) -> FrameResult:
    """A frame's ``FrameResult`` from its stored records.

    Args:
        records: obj id -> record of the objects with an output on the frame (already without the hidden ones).
        order: the ids in the order they are listed (creation order).
        always: the ids listed even without a non-empty record (objects created by ``add_prompt``).
    Objects found by a concept are listed only with a non-empty mask. Then every overlapping pixel goes to the
    listed object with the highest priority (ties: the smallest id), as the official object-wise non-overlap does;
    boxes are the final masks' boxes (the official boxes are taken before the non-overlap).
    """
    h, w = frame_size
    ids, masks, scores, prio, concepts = [], [], [], [], []
    for oid in order:
        rec = records.get(oid)
        m = decode_rle(rec.rle) if rec is not None else None
        if oid not in always and (m is None or not m.any()):
            continue
        ids.append(oid)
        masks.append(m if m is not None else np.zeros((h, w), dtype=bool))
        scores.append(rec.score if rec is not None else 0.0)
        prio.append((rec.priority if rec.priority is not None else rec.score) if rec is not None else 0.0)
        concepts.append(rec.concept if rec is not None else -1)
    n = len(ids)
    mask_t = torch.from_numpy(np.stack(masks)) if n else torch.zeros(0, h, w, dtype=torch.bool)
    if n > 1:
        by_id = np.argsort(np.asarray(ids), kind="stable")
        inv = np.empty_like(by_id)
        inv[by_id] = np.arange(n)
        t = torch.from_numpy(by_id)
        mask_t = object_wise_non_overlap(mask_t[t], torch.tensor(prio, dtype=torch.float32)[t])[torch.from_numpy(inv)]
    out = mask_t.numpy()
    return FrameResult(frame_index=frame, object_ids=np.asarray(ids, dtype=np.int64), masks=out,
                       boxes=boxes_from_masks(mask_t).numpy().astype(np.float32),
                       scores=np.asarray(scores, dtype=np.float32),
                       mask_logits=np.where(out, 10.0, -10.0).astype(np.float32) if with_logits else None,
                       concepts=np.asarray(concepts, dtype=np.int64))


@dataclass
class PendingFrame:
    """A computed frame waiting in the hot-start buffer: what its heuristics hid on it."""

    frame: int
    suppressed: set[int] = field(default_factory=set)


@dataclass
class OutputBuffer:
    """The official hot-start output buffer of one propagation pass: with a delay d > 0, frames are held until d
    frames are waiting, then released one at a time (frame t leaves once frame t + d - 1 has been computed); the
    last frame of the pass releases them all. With d = 0 every frame leaves at once.

    Masklet confirmation (when enabled) hides, on frame t, the objects not yet confirmed on frame
    t + (k - 1) (t - (k - 1) backwards), k = ``masklet_confirmation_consecutive_det_thresh``, clamped to the video;
    as officially, only with d > 0.
    """

    delay: int
    reverse: bool = False
    confirmation_lag: int = 0
    num_frames: Optional[int] = None
    pending: deque = field(default_factory=deque)
    unconfirmed: dict[int, set[int]] = field(default_factory=dict)

    def push(self, item: PendingFrame, unconfirmed: Optional[set[int]] = None, *, last: bool = False
             ) -> list[PendingFrame]:
        """Add a computed frame; returns the frames released now, oldest first."""
        if self.delay <= 0:
            return [item]
        self.pending.append(item)
        if unconfirmed is not None:
            self.unconfirmed[item.frame] = unconfirmed
        if last:
            return self.flush()
        if len(self.pending) >= self.delay:
            return [self.pending.popleft()]
        return []

    def flush(self) -> list[PendingFrame]:
        """Release every waiting frame (the end of the pass, or of the stream)."""
        out = list(self.pending)
        self.pending.clear()
        return out

    def unconfirmed_at(self, frame: int) -> set[int]:
        """The objects hidden on ``frame`` for want of confirmation."""
        if self.delay <= 0:
            return set()
        f = frame - self.confirmation_lag if self.reverse else frame + self.confirmation_lag
        hi = f if self.num_frames is None else min(f, self.num_frames - 1)
        return self.unconfirmed.get(max(0, hi), set())
