"""Post-processing as the official image API (``Sam3Processor``) does it.

Detections: ``score = sigmoid(logit) * sigmoid(presence)``, kept if ``score > threshold`` (official: strictly
greater), query order kept (no sorting, no NMS); boxes scaled to pixels (``ImageTransform.boxes_from_detector``),
not clipped; masks: the low-resolution *logits* are upsampled bilinearly (align_corners=False, no antialias) to the
original size, then ``sigmoid > mask_threshold``. (transformers upsamples probabilities instead, which differs at
mask borders.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def detection_scores(logits: Tensor, presence_logit: Tensor) -> Tensor:
    """(B, Q) class logits and (B,) presence logits -> (B, Q) detection probabilities."""
    return logits.sigmoid() * presence_logit.sigmoid()[:, None]


def upsample_logits(logits: Tensor, height: int, width: int) -> Tensor:
    """(N, h, w) low-resolution logits -> (N, height, width) float32 logits at the original size."""
    if logits.shape[0] == 0:
        return logits.new_zeros((0, height, width), dtype=torch.float32)
    return F.interpolate(logits[:, None].float(), size=(height, width), mode="bilinear", align_corners=False)[:, 0]
