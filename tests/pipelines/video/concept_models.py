"""A tiny model whose concept tracks really exist, for the concept tests.

With random weights the detector finds nothing (scores near 0.3, masks of noise) and the tracker's masks are faint
speckles that hole filling erases, so no track survives a frame. The test model keeps the random networks and adds
fixed offsets to their outputs (documented here, applied by wrapping ``Sam3Model.detect`` and a forward hook on the
tracker's mask decoder):

- detector: query 0 scores 0.95 with a disc mask ``BLOB_A`` (centre of the low-resolution grid), query 1 scores 0.6
  with a disjoint disc ``BLOB_B`` (top left), every other query scores ~0; the mask logits are
  ``0.1 * raw + 3 * (2 * blob - 1)``;
- tracker: every mask is ``0.1 * raw + 3 * (2 * BLOB_A - 1)`` and the object-score head has bias +6 (objects are
  present).

So on a concept's first frame both detections become objects (nothing is tracked yet: every kept detection is new,
as officially), and from the next frame on both tracks show ``BLOB_A``: detection 0 matches both (a duplicate pair)
and detection 1 matches none (it is below the new-object threshold 0.7): the hot start removes the later object
after 8 frames, and object 1 is tracked, matched by detection 0, on every frame.
"""

from __future__ import annotations

import numpy as np
import torch

from video_clips import tiny_video_model

LOW = 32  # 4g of the tiny model
SCORES = {0: 0.95, 1: 0.6}


def disc(cy: float, cx: float, r: float, size: int = LOW) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).float()


BLOB_A = disc(16, 16, 7)
BLOB_B = disc(4, 4, 3)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def concept_video_model(seed: int = 0):
    """``tiny_video_model`` with the offsets of the module docstring."""
    model = tiny_video_model(seed, obj_score_bias=6.0)
    plain_detect = model.detect

    def detect(image, text, boxes=None, box_labels=None, box_padding=None, *, masks=True, semantic=True):
        out = plain_detect(image, text, boxes, box_labels, box_padding, masks=masks, semantic=semantic)
        q = out.logits.shape[-1]
        fixed = torch.full((q,), -12.0)
        blobs = torch.zeros(q, LOW, LOW)
        for k, p in SCORES.items():
            fixed[k] = _logit(p)
        blobs[0], blobs[1] = BLOB_A, BLOB_B
        out.logits = out.logits * 0 + fixed.to(out.logits)
        out.presence_logit = out.presence_logit * 0 + 20.0
        if out.mask_logits is not None:
            out.mask_logits = 0.1 * out.mask_logits + (3 * (2 * blobs - 1)).to(out.mask_logits)
        return out

    model.detect = detect

    def tracker_masks(module, args, out):
        out.mask_logits = 0.1 * out.mask_logits + (3 * (2 * BLOB_A - 1)).to(out.mask_logits)
        return out

    model.tracker_model.mask_decoder.register_forward_hook(tracker_masks)
    return model
