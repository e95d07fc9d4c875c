"""Suppression of overlapping tracks by recent occlusion (official ``_suppress_overlapping_based_on_recent_occlusion``
and ``_get_objects_to_suppress_based_on_most_recently_occluded``). Stateless: the last-occluded frames are passed in
and the new ones returned."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

from .detections import mask_iou

NEVER_OCCLUDED = -1
ALWAYS_OCCLUDED = 100000
"""Last-occluded frame of a track never seen empty, and of a track the hot start removes on this frame (larger than
any frame index: it loses every overlap)."""
SUPPRESSED_LOGIT = -10.0
"""The logits of a suppressed track, on every pixel (its output and memory on this frame are empty)."""


def objects_to_suppress(masks: Tensor, last_occluded: Tensor, threshold: float, reverse: bool) -> Tensor:
    """Which tracks to blank: for every pair with mask IoU >= ``threshold``, the one occluded more recently (later
    frame forwards, earlier backwards), provided the other one has been occluded at some point.

    Args:
        masks: (N, h, w) bool; last_occluded: (N,) int64 frames (``NEVER_OCCLUDED`` if never).
    Returns:
        (N,) bool.
    """
    n = masks.shape[0]
    out = torch.zeros(n, dtype=torch.bool, device=masks.device)
    if n <= 1:
        return out
    pairs = torch.triu(mask_iou(masks, masks) >= threshold, diagonal=1)
    li, lj = last_occluded[:, None], last_occluded[None, :]
    cmp = torch.lt if reverse else torch.gt
    sup_i = pairs & cmp(li, lj) & (lj > NEVER_OCCLUDED)
    sup_j = pairs & cmp(lj, li) & (li > NEVER_OCCLUDED)
    return sup_i.any(dim=1) | sup_j.any(dim=0)


def suppress_by_recent_occlusion(logits: Tensor, obj_ids: list[int], last_occluded: dict[int, int],
                                 newly_removed: Iterable[int], frame: int, threshold: float,
                                 reverse: bool) -> tuple[Tensor, dict[int, int]]:
    """One frame of the occlusion rule on the tracks' low-resolution logits.

    Args:
        logits: (N, h, w) float; obj_ids: their N ids; last_occluded: id -> frame, for the tracks seen so far (a
            track without an entry: never occluded, or always if the hot start removes it on this frame).
    Returns:
        (the logits with the suppressed tracks set to -10 everywhere, the new id -> last-occluded frame of the N
        tracks: the frame itself for those empty or suppressed).
    """
    removed = set(newly_removed)
    binary = logits > 0
    last = torch.tensor([last_occluded.get(i, ALWAYS_OCCLUDED if i in removed else NEVER_OCCLUDED) for i in obj_ids],
                        dtype=torch.long, device=logits.device)
    sup = objects_to_suppress(binary, last, threshold, reverse)
    occluded = ~binary.flatten(1).any(dim=1)
    new_last = torch.where(occluded | sup, torch.full_like(last, frame), last)
    out = logits.clone()
    out[sup] = SUPPRESSED_LOGIT
    return out, {i: int(v) for i, v in zip(obj_ids, new_last.tolist())}
