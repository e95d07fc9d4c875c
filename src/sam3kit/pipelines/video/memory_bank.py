"""The memory bank of objects tracked together, and the policy that picks what a frame reads (pure functions).

A bank holds, per frame, one ``FrameMemory`` for the B objects of a group: the memory maps (bfloat16), object
pointers, object scores, predicted IoUs, low-resolution logits and the frame's memory-selection score.
*Conditioning* frames (the prompted ones) are kept for good; *non-conditioning* frames (tracked ones) only while
some future frame can still read them.

What frame t reads (official ``_prepare_memory_conditioned_features`` at inference, ``choose_memories`` here):
    - up to ``max_conditioning_frames`` prompted frames, the closest before, the closest after, then the nearest
      others (temporal slot 0, i.e. ``tpos`` index ``num_maskmem - 1``);
    - ``num_maskmem - 1`` (6) non-conditioning memories: without memory selection the frames t-1 .. t-6 (t+1 ..
      t+6 backwards); with memory selection the last entries of the *frame filter*: walking away from t (down to
      frame 1 forwards, up to the last frame backwards) it keeps the frames whose score exceeds the threshold, at
      most ``min(num_frames, 16) - 1`` of them, and always appends the adjacent frame t-1 (t+1);
    - object pointers of the selected prompted frames on the near side of t (offset ``t - c``, sign flipped
      backwards) and of up to 15 other frames (t-1 .. t-15, or the filter's entries but its oldest).
A prompted frame not among the selected ones is read like a non-conditioning frame when it is one of those.

What the bank keeps besides (``MemoryBank.trim``): the outputs (logits, pointers, scores, no memory maps) of the
last frames tracked in each direction, which a refinement click there reuses.

What the bank keeps for tracking (``frames_to_keep``): the union of what the next frame of every way tracking can continue
reads (and so every frame after it: later frames read, of today's entries, a subset of that): the next frame of
the running or latest propagation in each direction, and the frames next to every prompted frame on both sides (a
later propagation from a prompted frame starts there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import torch
from torch import Tensor

from ...model.features import MemoryPrompt

COND = "cond"
NON_COND = "non_cond"
MAX_POINTER_FRAMES = 16
"""Frames whose object pointers one frame reads at most (official ``max_obj_ptrs_in_encoder`` of the release)."""


@dataclass(frozen=True)
class MemoryPolicy:
    """The bank's sizes (the released tracker's) and the selection switch (``VideoOptions``)."""

    num_maskmem: int = 7
    max_conditioning_frames: int = 4
    max_pointers: int = MAX_POINTER_FRAMES
    memory_selection: bool = True
    selection_threshold: float = 0.01


@dataclass(frozen=True)
class MemoryChoice:
    """Which stored frames one frame reads.

    spatial: (frame, tpos index, store) in attention order: selected prompted frames first (store ``COND``), then
        the non-conditioning slots from the farthest (t_rel = 6) to the nearest (t_rel = 1).
    pointers: (frame, temporal offset, store): the selected prompted frames on the near side, then the others.
    pointer_scale: ``min(num_frames, max_pointers)`` (the divisor of the pointer offsets, minus one).
    candidates: the frame filter's list (memory selection), else empty.
    """

    spatial: tuple[tuple[int, int, str], ...]
    pointers: tuple[tuple[int, int, str], ...]
    pointer_scale: int
    candidates: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.spatial and not self.pointers


def select_conditioning(t: int, cond_frames: Sequence[int], max_frames: int) -> tuple[list[int], list[int]]:
    """The prompted frames frame t attends to (official ``select_closest_cond_frames``, no "keep first").

    Args:
        cond_frames: prompted frames in the order they became conditioning frames (ties of equal distance are
            broken by this order, as in the official code).
    Returns:
        (selected, unselected), each in ``cond_frames`` order.
    """
    if len(cond_frames) <= max_frames:
        return list(cond_frames), []
    chosen: list[int] = []
    before = [c for c in cond_frames if c < t]
    after = [c for c in cond_frames if c >= t]
    if before:
        chosen.append(max(before))
    if after:
        chosen.append(min(after))
    rest = sorted((c for c in cond_frames if c not in chosen), key=lambda c: abs(c - t))
    chosen.extend(rest[:max_frames - len(chosen)])
    keep = set(chosen)
    # the official dict keeps the order: before, after, then by distance
    return chosen, [c for c in cond_frames if c not in keep]


def filter_frames(t: int, reverse: bool, scores: Mapping[int, Optional[float]], num_frames: Optional[int],
                  policy: MemoryPolicy) -> list[int]:
    """The SAM2Long frame filter (official ``frame_filter`` with stride 1).

    Args:
        scores: non-conditioning frame -> its memory-selection score, or None for a frame without one (skipped).
        num_frames: frames of the video (None: a stream of unknown length, counted as long).
    Returns:
        the valid frames, farthest first, ending with the adjacent frame t-1 (t+1 backwards).
    """
    last = None if num_frames is None else num_frames - 1
    if (t == 0 and not reverse) or (reverse and last is not None and t == last):
        return []
    max_num = policy.max_pointers if num_frames is None else min(num_frames, policy.max_pointers)
    if not reverse:
        # official range(t - 1, 0, -1): frame 0 is never scanned (only appended as t - 1)
        walk = sorted((f for f in scores if 1 <= f <= t - 1), reverse=True)
        adjacent = t - 1
    else:
        walk = sorted(f for f in scores if f >= t + 1 and (last is None or f <= last))
        adjacent = t + 1
    valid: list[int] = []
    for f in walk:
        s = scores[f]
        if s is None:
            continue
        if s > policy.selection_threshold:
            valid.insert(0, f)
        if len(valid) >= max_num - 1:
            break
    if adjacent not in valid:
        valid.append(adjacent)
    return valid


def choose_memories(t: int, reverse: bool, cond_frames: Sequence[int], scores: Mapping[int, Optional[float]],
                    num_frames: Optional[int], policy: MemoryPolicy) -> MemoryChoice:
    """What frame t reads, given the prompted frames (in conditioning order) and the non-conditioning frames held
    (``scores``: frame -> selection score or None). Frames the bank does not hold are skipped, as the official
    code skips frames that were never tracked."""
    selected, unselected = select_conditioning(t, cond_frames, policy.max_conditioning_frames)
    unselected_set = set(unselected)

    def find(f: int) -> Optional[str]:
        if f in scores:
            return NON_COND
        if f in unselected_set:
            return COND
        return None

    sign = -1 if reverse else 1
    step = 1 if reverse else -1  # towards the frames behind t
    n = policy.num_maskmem
    spatial: list[tuple[int, int, str]] = [(c, n - 1, COND) for c in selected]
    valid = filter_frames(t, reverse, scores, num_frames, policy) if policy.memory_selection else None
    for t_rel in range(n - 1, 0, -1):
        if valid is not None:
            if t_rel > len(valid):
                continue
            f = valid[-t_rel]
        else:
            f = t + step * t_rel
        store = find(f)
        if store is not None:
            spatial.append((f, t_rel - 1, store))

    scale = policy.max_pointers if num_frames is None else min(num_frames, policy.max_pointers)
    near = [c for c in selected if (c >= t if reverse else c <= t)]
    pointers: list[tuple[int, int, str]] = [(c, (t - c) * sign, COND) for c in near]
    for t_diff in range(1, scale):
        if valid is not None:
            if t_diff >= len(valid):
                break
            f = valid[-t_diff]
        else:
            f = t + step * t_diff
            if f < 0 or (num_frames is not None and f >= num_frames):
                break
        store = find(f)
        if store is not None:
            pointers.append((f, t_diff, store))
    return MemoryChoice(spatial=tuple(spatial), pointers=tuple(pointers), pointer_scale=scale,
                        candidates=tuple(valid or ()))


def frames_to_keep(queries: Iterable[tuple[int, bool]], cond_frames: Sequence[int],
                   scores: Mapping[int, Optional[float]], num_frames: Optional[int],
                   policy: MemoryPolicy) -> tuple[set[int], set[int]]:
    """The non-conditioning frames that the given next frames, and every frame after them, can read.

    The frames after a next frame q read, of the frames held now, only frames that q reads, with one exception
    that is covered here: with memory selection the pointers of q's frame filter list except its oldest entry,
    and a later frame (after an invalid one) can read that oldest entry's pointer too; so the pointers of the
    whole list are kept.

    Args:
        queries: (frame, reverse) of every frame tracking may compute next.
    Returns:
        (spatial, pointers): frames whose memory maps are read, frames whose pointers are read.
    """
    spatial: set[int] = set()
    pointers: set[int] = set()
    for q, reverse in queries:
        if q < 0 or (num_frames is not None and q >= num_frames):
            continue
        ch = choose_memories(q, reverse, cond_frames, scores, num_frames, policy)
        spatial.update(f for f, _, s in ch.spatial if s == NON_COND)
        pointers.update(f for f, _, s in ch.pointers if s == NON_COND)
        pointers.update(f for f in ch.candidates if f in scores)
    return spatial, pointers


def selection_score(object_score_logits: Tensor, iou: Tensor) -> float:
    """Memory-selection score of a frame (official ``cal_mem_score``): the object scores rescaled to [0, 1]
    (``2 sigmoid(x) - 1`` where x > 0, else 0) times the predicted IoU, averaged.

    Args:
        object_score_logits: (B, 1).
        iou: (B,) from tracking (the official broadcast then averages the B x B products, i.e. mean(score) *
            mean(iou)), or (B, 1) for a prompted frame (element-wise products, averaged).
    """
    x = object_score_logits.float()
    norm = torch.where(x > 0, x.sigmoid() * 2 - 1, torch.zeros_like(x))
    return float((norm * iou.float()).mean())


@dataclass
class FrameMemory:
    """One frame's memory for the B objects of a group (rows in the group's object order).

    maskmem: (B, memory_dim, g, g) bfloat16 memory maps; None once the bank no longer needs them.
    pointer: (B, d) object pointers.
    object_score: (B, 1) object-score logits.
    iou: (B,) best predicted IoU per object (tracked frame) or (B, 1) (prompted frame).
    low_res: (B, 1, 4g, 4g) float32 low-resolution logits (NO_OBJECT_SCORE where absent); None once dropped.
    score: memory-selection score, or None (prompted frames have none; the frame filter skips them).
    """

    maskmem: Optional[Tensor]
    pointer: Tensor
    object_score: Tensor
    iou: Tensor
    low_res: Optional[Tensor]
    score: Optional[float] = None

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.maskmem, self.pointer, self.object_score, self.iou,
                                                           self.low_res) if t is not None)

    def rows(self, keep: list[int]) -> "FrameMemory":
        """The same frame for a subset of the objects (``keep``: row indices), the score recomputed as the
        official ``remove_object`` does."""
        idx = torch.tensor(keep, dtype=torch.long)
        sel = [None if t is None else t[idx.to(t.device)] for t in (self.maskmem, self.pointer, self.object_score,
                                                                    self.iou, self.low_res)]
        return FrameMemory(*sel, score=selection_score(sel[2], sel[3]))


@dataclass
class MemoryBank:
    """The conditioning and non-conditioning memories of one group of objects."""

    policy: MemoryPolicy
    cond: dict[int, FrameMemory] = field(default_factory=dict)
    non_cond: dict[int, FrameMemory] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(m.nbytes for m in self.cond.values()) + sum(m.nbytes for m in self.non_cond.values())

    def scores(self) -> dict[int, Optional[float]]:
        return {f: m.score for f, m in self.non_cond.items()}

    def get(self, frame: int) -> Optional[FrameMemory]:
        """The frame's memory, conditioning first."""
        m = self.cond.get(frame)
        return m if m is not None else self.non_cond.get(frame)

    def choose(self, t: int, reverse: bool, num_frames: Optional[int]) -> MemoryChoice:
        return choose_memories(t, reverse, list(self.cond), self.scores(), num_frames, self.policy)

    def prompt(self, choice: MemoryChoice, device: torch.device) -> MemoryPrompt:
        """The tensors of a choice, on ``device``. Entries whose memory maps were dropped are skipped (only after
        a propagation started where the bank had let them go)."""
        spatial, tpos = [], []
        for f, ti, store in choice.spatial:
            m = (self.cond if store == COND else self.non_cond)[f]
            if m.maskmem is not None:
                spatial.append(m.maskmem.to(device, non_blocking=True))
                tpos.append(ti)
        ptrs, offsets = [], []
        for f, off, store in choice.pointers:
            ptrs.append((self.cond if store == COND else self.non_cond)[f].pointer.to(device))
            offsets.append(off)
        return MemoryPrompt(spatial=spatial, spatial_tpos=tpos, pointers=torch.stack(ptrs) if ptrs else None,
                            pointer_offsets=offsets if ptrs else None, pointer_scale=choice.pointer_scale)

    def trim(self, queries: Iterable[tuple[int, bool]], num_frames: Optional[int],
             keep_outputs: Iterable[int] = ()) -> None:
        """Drop what none of ``queries`` (the frames tracking may compute next) reads: whole entries, or the memory
        maps and logits of entries whose pointers are still read. Entries of ``keep_outputs`` keep their outputs
        (logits, pointers, scores: what a later click on that frame reuses) without their memory maps."""
        spatial, pointers = frames_to_keep(queries, list(self.cond), self.scores(), num_frames, self.policy)
        outputs = set(keep_outputs)
        for f in list(self.non_cond):
            if f in spatial:
                continue
            if f in pointers or f in outputs:
                m = self.non_cond[f]
                m.maskmem = None
                if f not in outputs:
                    m.low_res = None
            else:
                del self.non_cond[f]
