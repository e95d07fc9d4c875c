"""Detections to tracks on one frame (official ``_associate_det_trk``, many-to-one, without the optional one-to-one
matching): which detections are new objects, which tracks are unmatched or empty, which tracks each detection
matches, and the high-confidence detection of each track (for re-conditioning). Stateless."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from .detections import mask_iou

HIGH_CONF_THRESH = 0.8
HIGH_IOU_THRESH = 0.8
"""A detection that is not new, with probability >= ``HIGH_CONF_THRESH`` and IoU >= ``HIGH_IOU_THRESH`` with its best
track, is that track's high-confidence detection (official constants)."""


@dataclass
class Association:
    """The outcome of one frame's association (object ids are the tracks' ids).

    new: (K,) int64 indices of the detections that become new objects, ascending.
    unmatched: (U,) int64 ids of the non-empty tracks that no detection matches with IoU >= ``trk_assoc_iou_thresh``.
    empty: (E,) int64 ids of the tracks whose mask is empty.
    matched: detection index -> (m,) int64 ids of the tracks it matches (IoU >= ``assoc_iou_thresh``), for every
        detection (empty when there are no tracks).
    high_conf: track id -> the index of its high-confidence detection.
    """

    new: np.ndarray
    unmatched: np.ndarray
    empty: np.ndarray
    matched: dict[int, np.ndarray] = field(default_factory=dict)
    high_conf: dict[int, int] = field(default_factory=dict)


def associate(det_masks: Tensor, det_scores: np.ndarray, trk_masks: Tensor, trk_ids: np.ndarray, *,
              assoc_iou_thresh: float, trk_assoc_iou_thresh: float, new_det_thresh: float) -> Association:
    """Match the detections of a frame with the tracks propagated to it.

    Args:
        det_masks: (N, h, w) float detection logits; det_scores: (N,) probabilities.
        trk_masks: (M, h', w') float track logits; trk_ids: (M,) int64 their object ids.
    Masks are binarised at 0 after resizing the larger of the two to the smaller size (bilinear).

    With no tracks every detection is new, whatever its score (official behaviour: the new-object threshold only
    applies once something is tracked).
    """
    n, m = det_masks.shape[0], trk_masks.shape[0]
    empty_i = np.zeros(0, np.int64)
    if m == 0:
        return Association(new=np.arange(n, dtype=np.int64), unmatched=empty_i, empty=empty_i)
    if n == 0:
        nonempty = (trk_masks > 0).flatten(1).any(dim=1).cpu().numpy()
        return Association(new=empty_i, unmatched=trk_ids[nonempty], empty=trk_ids[~nonempty])
    if det_masks.shape[-2:] != trk_masks.shape[-2:]:
        if np.prod(det_masks.shape[-2:]) < np.prod(trk_masks.shape[-2:]):
            trk_masks = F.interpolate(trk_masks[:, None], size=det_masks.shape[-2:], mode="bilinear",
                                      align_corners=False)[:, 0]
        else:
            det_masks = F.interpolate(det_masks[:, None], size=trk_masks.shape[-2:], mode="bilinear",
                                      align_corners=False)[:, 0]
    trk_bin = trk_masks > 0
    ious = mask_iou(det_masks > 0, trk_bin).cpu().numpy()  # (N, M)
    trk_matched = (ious >= trk_assoc_iou_thresh).any(axis=0)
    nonempty = trk_bin.flatten(1).any(dim=1).cpu().numpy()
    unmatched = trk_ids[nonempty & ~trk_matched]
    empty = trk_ids[~nonempty]
    is_new = (det_scores >= new_det_thresh) & ~(ious >= assoc_iou_thresh).any(axis=1)
    new = np.nonzero(is_new)[0].astype(np.int64)
    best = np.argmax(ious, axis=1)
    high = set(np.nonzero((det_scores >= HIGH_CONF_THRESH) & ~is_new & (ious.max(axis=1) >= HIGH_IOU_THRESH))[0])
    matched: dict[int, np.ndarray] = {}
    high_conf: dict[int, int] = {}
    for d in range(n):
        matched[d] = trk_ids[ious[d] >= assoc_iou_thresh]
        if d in high:
            high_conf[int(trk_ids[best[d]])] = d
    return Association(new=new, unmatched=unmatched, empty=empty, matched=matched, high_conf=high_conf)
