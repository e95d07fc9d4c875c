"""A frame's detections for concept tracking (official ``run_backbone_and_detection`` after the detector): the
video model's joint score, mask NMS among the candidates, the probability threshold.

Everything is stateless; masks are the detector's low-resolution logits (4g x 4g, 288 x 288 at release).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

JOINT_SCORE_EPS = 1e-3
"""The official ``inverse_sigmoid`` epsilon of the video model's joint score."""
JOINT_LOGIT_CLAMP = 10.0
"""The joint logit is clamped to +-10 (official ``supervise_joint_box_scores``)."""
NMS_SUPPRESSED = 1e4
"""What the official NMS subtracts from the logit of a suppressed detection."""
DISABLED = 1e8
"""What the official code subtracts from every probability of a frame where new detections are not allowed."""


@dataclass
class Detections:
    """The kept detections of one frame, in the detector's query order (official ``det_out``).

    boxes: (N, 4) float32 normalised xyxy of the model input.
    masks: (N, h, w) float32 low-resolution mask logits.
    scores: (N,) float32 detection probabilities.
    """

    boxes: Tensor
    masks: Tensor
    scores: Tensor

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, mask_size: int, device: torch.device = torch.device("cpu")) -> "Detections":
        return cls(torch.zeros(0, 4, device=device), torch.zeros(0, mask_size, mask_size, device=device),
                   torch.zeros(0, device=device))


def inverse_sigmoid(x: Tensor, eps: float = JOINT_SCORE_EPS) -> Tensor:
    """``log(x / (1 - x))`` with both terms clamped to at least ``eps`` (official ``inverse_sigmoid``)."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def joint_logits(class_logits: Tensor, presence_logit: Tensor) -> Tensor:
    """The video model's detection logits: (Q,) class logits and a () presence logit -> (Q,) float32
    ``clamp(inverse_sigmoid(sigmoid(class) * sigmoid(presence)), -10, 10)``."""
    p = class_logits.float().sigmoid() * presence_logit.float().sigmoid()
    return inverse_sigmoid(p).clamp(min=-JOINT_LOGIT_CLAMP, max=JOINT_LOGIT_CLAMP)


def mask_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of binary masks: (N, H, W) bool and (M, H, W) bool -> (N, M) float32 (an empty union counts 1,
    as the official ``mask_iou``)."""
    n, m = a.shape[0], b.shape[0]
    fa = a.reshape(n, 1, -1)
    fb = b.reshape(1, m, -1)
    inter = (fa & fb).sum(dim=2).float()
    union = (fa | fb).sum(dim=2).float()
    return inter / union.clamp(min=1)


def nms_keep(probs: Tensor, masks: Tensor, prob_threshold: float, iou_threshold: float) -> Tensor:
    """Mask NMS (official ``nms_masks`` with its CPU ``generic_nms``): among the detections with probability
    > ``prob_threshold``, visited by decreasing probability (numpy's ``argsort`` order), keep one and drop the
    later ones whose mask IoU with it is > ``iou_threshold``.

    Args:
        probs: (Q,) probabilities; masks: (Q, h, w) logits (binarised at 0).
    Returns:
        (Q,) bool: kept (False for every detection at or below the threshold).
    """
    valid = probs > prob_threshold
    if not bool(valid.any()):
        return valid
    idx = torch.nonzero(valid).flatten()
    ious = mask_iou(masks[idx] > 0, masks[idx] > 0).cpu().numpy()
    order = probs[idx].float().cpu().numpy().argsort()[::-1]
    kept = []
    while order.size > 0:
        i = int(order[0])
        kept.append(i)
        order = order[1:][ious[i, order[1:]] <= iou_threshold]
    keep = torch.zeros_like(valid)
    keep[idx[torch.tensor(kept, dtype=torch.long, device=idx.device)]] = True
    return keep


def select_detections(class_logits: Tensor, presence_logit: Tensor, boxes: Tensor, masks: Tensor, *,
                      score_threshold: float, nms_threshold: float, allow_new: bool = True) -> Detections:
    """The kept detections of one frame from the detector's outputs for one prompt.

    Args:
        class_logits: (Q,); presence_logit: (); boxes: (Q, 4) normalised xyxy; masks: (Q, h, w) logits.
        score_threshold: ``score_threshold_detection``; nms_threshold: ``det_nms_thresh`` (0: no NMS).
        allow_new: False on frames where the concept has neither a text nor an exemplar (box-only concepts away
            from their exemplar frame): nothing is kept, as the official code does.
    Returns:
        ``Detections`` with probability > ``score_threshold`` that survive NMS, in query order.
    """
    logits = joint_logits(class_logits, presence_logit)
    if nms_threshold > 0:
        keep = nms_keep(logits.sigmoid(), masks, score_threshold, nms_threshold)
        logits = logits - NMS_SUPPRESSED * (~keep).float()
    probs = logits.sigmoid()
    if not allow_new:
        probs = probs - DISABLED
    idx = torch.nonzero(probs > score_threshold).flatten()
    return Detections(boxes=boxes[idx].float(), masks=masks[idx].float(), scores=probs[idx].float())


def close_to_boundary(boxes: Tensor, margin: float = 0.025) -> np.ndarray:
    """(N, 4) normalised xyxy -> (N,) bool: the box centre lies within ``margin`` of the border (official
    ``_suppress_detections_close_to_boundary`` keeps the others)."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    inside = (cx > margin) & (cx < 1.0 - margin) & (cy > margin) & (cy < 1.0 - margin)
    return (~inside).cpu().numpy()
