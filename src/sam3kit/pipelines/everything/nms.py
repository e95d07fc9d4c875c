"""Greedy box non-maximum suppression, as SAM 1 runs it (torchvision's ``nms`` on CPU).

Boxes are visited by decreasing score; equal scores keep their input order (a stable sort). A visited box that
has not been suppressed is kept, and suppresses every later box whose IoU with it is > ``iou_threshold`` (strictly).
IoU uses the box areas (x1 - x0) * (y1 - y0) in float32 (SAM 1's inclusive mask boxes, as they are); two boxes of
zero area have IoU NaN and never suppress each other.
"""

from __future__ import annotations

import torch
from torch import Tensor


def box_iou_one(box: Tensor, boxes: Tensor) -> Tensor:
    """(4,) and (N, 4) xyxy -> (N,) float32 IoU of ``box`` with each of ``boxes``."""
    box, boxes = box.float(), boxes.float()
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    w = (torch.minimum(box[2], boxes[:, 2]) - torch.maximum(box[0], boxes[:, 0])).clamp(min=0)
    h = (torch.minimum(box[3], boxes[:, 3]) - torch.maximum(box[1], boxes[:, 1])).clamp(min=0)
    inter = w * h
    return inter / (area + areas - inter)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the kept boxes, by decreasing score (ties: input order).

    Args:
        boxes: (N, 4) xyxy (any real dtype; compared in float32).
        scores: (N,) higher is better.
        iou_threshold: a box is suppressed by a kept one when their IoU is > this.
    Returns:
        (K,) int64 indices into ``boxes``.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64)
    order = torch.sort(scores.detach().cpu().double(), descending=True, stable=True).indices
    b = boxes.detach().cpu().float()[order]
    alive = torch.ones(n, dtype=torch.bool)
    kept = []
    for i in range(n):
        if not alive[i]:
            continue
        kept.append(i)
        if i + 1 < n:
            rest = box_iou_one(b[i], b[i + 1:]).double() > iou_threshold
            alive[i + 1:] &= ~rest
    return order[torch.tensor(kept, dtype=torch.int64)]
