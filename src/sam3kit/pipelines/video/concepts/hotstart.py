"""Hot-start removal of spurious tracks (official ``_process_hotstart``): the per-concept bookkeeping and the rule
applied on each frame. The rule is a function of the bookkeeping, which it updates."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .associate import Association
from .options import ConceptTrackOptions


@dataclass
class HotstartBook:
    """What the hot-start rule remembers about the tracks of one concept (official ``rank0_metadata``).

    first_frame: object id -> the frame where it first appeared.
    unmatched_frames: object id -> frames where it was non-empty and unmatched (in the order they were seen).
    keep_alive: object id -> keep-alive counter.
    overlap_frames: (earlier object id, later object id) -> frames where both matched one detection.
    removed: every object removed by the rule (never shown again, hidden in the outputs not yet reported).
    suppressed: frame -> objects whose output is hidden on that frame (keep-alive <= 0; only with
        ``suppress_unmatched_only_within_hotstart=False``); only frames with some are kept.
    """

    first_frame: dict[int, int] = field(default_factory=dict)
    unmatched_frames: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    keep_alive: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    overlap_frames: dict[tuple[int, int], list[int]] = field(default_factory=lambda: defaultdict(list))
    removed: set[int] = field(default_factory=set)
    suppressed: dict[int, set[int]] = field(default_factory=dict)

    def forget(self, obj_ids: Iterable[int]) -> None:
        """Drop the records of objects that are gone for good (removed by the user)."""
        ids = set(obj_ids)
        for d in (self.first_frame, self.unmatched_frames, self.keep_alive):
            for i in ids:
                d.pop(i, None)
        for key in [k for k in self.overlap_frames if k[0] in ids or k[1] in ids]:
            del self.overlap_frames[key]
        for s in self.suppressed.values():
            s.difference_update(ids)


def process_hotstart(book: HotstartBook, frame: int, reverse: bool, assoc: Association, new_ids: np.ndarray,
                     options: ConceptTrackOptions) -> set[int]:
    """Apply the hot-start rule on one frame and return the objects it removes now.

    Args:
        book: the concept's bookkeeping (updated).
        frame: the frame; reverse: the propagation direction.
        assoc: the frame's association; new_ids: (K,) the ids given to its new detections.
    Rules (official order): new objects get their first frame and the initial keep-alive; every track matched by a
    detection counts up, every unmatched one counts down; a track unmatched on ``hotstart_unmatch_thresh`` frames is
    removed if it first appeared after ``frame - hotstart_delay`` (before ``frame + hotstart_delay`` backwards);
    for every detection matched by two or more tracks, the pairs (the earliest-appearing track, another) count an
    overlap, and the later track of a pair with ``hotstart_dup_thresh`` overlaps is removed on the same window
    condition.
    """
    o = options
    newly: set[int] = set()
    diff = frame + o.hotstart_delay if reverse else frame - o.hotstart_delay

    def within(obj: int) -> bool:
        first = book.first_frame[obj]
        return (first < diff) if reverse else (first > diff)

    for obj in new_ids.tolist():
        book.first_frame.setdefault(obj, frame)
        book.keep_alive[obj] = o.init_trk_keep_alive
    matched: set[int] = set()
    for ids in assoc.matched.values():
        matched.update(ids.tolist())
    for obj in matched:
        book.keep_alive[obj] = min(o.max_trk_keep_alive, book.keep_alive[obj] + 1)
    for obj in assoc.unmatched.tolist():
        book.unmatched_frames[obj].append(frame)
        book.keep_alive[obj] = max(o.min_trk_keep_alive, book.keep_alive[obj] - 1)
    if o.decrease_trk_keep_alive_for_empty_masklets:
        for obj in assoc.empty.tolist():
            book.keep_alive[obj] = max(o.min_trk_keep_alive, book.keep_alive[obj] - 1)

    suppressed = book.suppressed.get(frame, set())
    for obj, frames in book.unmatched_frames.items():
        if obj in book.removed or obj in newly:
            continue
        if len(frames) >= o.hotstart_unmatch_thresh and within(obj):
            newly.add(obj)
        if (book.keep_alive[obj] <= 0 and not o.suppress_unmatched_only_within_hotstart
                and obj not in book.removed and obj not in newly):
            suppressed.add(obj)
    if suppressed:
        book.suppressed[frame] = suppressed

    for ids in assoc.matched.values():
        if len(ids) < 2:
            continue
        key = (lambda x: book.first_frame[x])
        first = max(ids.tolist(), key=key) if reverse else min(ids.tolist(), key=key)
        for obj in ids.tolist():
            if obj != first:
                book.overlap_frames[(first, obj)].append(frame)
    for (first, obj), frames in book.overlap_frames.items():
        if obj in book.removed or obj in newly:
            continue
        if within(obj) and len(frames) >= o.hotstart_dup_thresh:
            newly.add(obj)
    book.removed.update(newly)
    return newly
