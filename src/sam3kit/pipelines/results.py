"""Result types of the image predictor. Arrays are numpy; coordinates are pixels of the original image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class SegmentResult:
    """Concept segmentation of one image: every instance of the prompt.

    Instance ``i`` is ``masks[i]``, ``boxes[i]``, ``scores[i]``: the instances are in the detector's query order
    (the official order; ``query_indices`` increases), not sorted by score. The command line numbers its outputs
    the same way (``mask_001.png`` is ``masks[1]`` for the first prompt). ``np.argsort(-scores)`` gives the
    best-first order.

    masks: (N, H, W) bool at the original image size.
    boxes: (N, 4) float32 pixel xyxy (not clipped, as the official post-processing).
    scores: (N,) float32 = sigmoid(class logit) * sigmoid(presence logit).
    presence: probability that the concept is in the image at all.
    query_indices: (N,) int64 index of the detector query behind each instance, increasing.
    mask_logits: (N, H, W) float32 logits at the original size, when requested.
    semantic_logits: (H, W) float32 semantic-map logits at the original size, when requested.
    """

    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    presence: float
    query_indices: np.ndarray
    mask_logits: Optional[np.ndarray] = None
    semantic_logits: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass
class PredictResult:
    """Interactive segmentation of one object (one prompt set).

    masks: (M, H, W) bool at the original size (M = 3 with multimask, else 1).
    iou_scores: (M,) float32 predicted IoU of each mask.
    object_score: probability that the object is present (sigmoid of the object-score logit).
    low_res_logits: (M, 4g, 4g) float32 logits (288 x 288 at release): pass one back as ``mask_input``.
    best: index of the mask with the highest predicted IoU.
    """

    masks: np.ndarray
    iou_scores: np.ndarray
    object_score: float
    low_res_logits: np.ndarray
    best: int

    @property
    def best_mask(self) -> np.ndarray:
        return self.masks[self.best]
