"""Non-overlap between the tracks of a frame, the two ways the official detect-and-track applies it (stateless):

- before memory encoding (``_suppress_object_pw_area_shrinkage``): the pixel-wise arg-max non-overlap is computed,
  and a track that would keep less than 30 % of its area is suppressed altogether; the other tracks keep their
  logits, overlaps included;
- on the outputs (``_apply_object_wise_non_overlapping_constraints``): an overlapping pixel goes to the object with
  the highest score (not the highest logit).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ....model.tracker.video_step import MASK_OUTPUT_BIAS, non_overlapping

SHRINK_THRESHOLD = 0.3
"""A track whose area after the pixel-wise non-overlap is below this fraction of its area is suppressed."""


def suppress_shrunk(logits: Tensor, threshold: float = SHRINK_THRESHOLD) -> Tensor:
    """(N, 1, H, W) logits -> the same with every track that the pixel-wise non-overlap would shrink below
    ``threshold`` of its area clamped to <= -10 (official ``_suppress_object_pw_area_shrinkage``)."""
    after = non_overlapping(logits)
    area_before = (logits > 0).sum(dim=(-1, -2)).clamp(min=1.0)
    area_after = (after > 0).sum(dim=(-1, -2))
    keep = (area_after / area_before) >= threshold
    return torch.where(keep[..., None, None].expand_as(logits), logits, logits.clamp(max=MASK_OUTPUT_BIAS))


def object_wise_non_overlap(masks: Tensor, scores: Tensor) -> Tensor:
    """(N, H, W) bool masks and (N,) scores -> (N, H, W) bool where each overlapping pixel belongs only to the
    object with the highest score (ties: the first); official ``_apply_object_wise_non_overlapping_constraints``
    with background 0 on binary masks, so a pixel whose winner has score <= 0 is dropped."""
    if masks.shape[0] <= 1:
        return masks
    s = torch.where(masks, scores.float().view(-1, 1, 1), torch.zeros((), dtype=torch.float32))
    winner = s.argmax(dim=0, keepdim=True)
    own = torch.arange(masks.shape[0], device=masks.device).view(-1, 1, 1)
    return masks & (winner == own) & (s > 0)
