"""Case e: the official image post-processing (``Sam3Processor._forward_grounding``) of the d cases: the threshold
chosen per case, which queries pass it, and the masks, boxes and scores at the original image size."""
from __future__ import annotations

import torch

from .recording import tensor_copy

FAMILIES = {
    "e": dict(
        description="Official image post-processing (Sam3Processor._forward_grounding) of the same d cases with "
                    "processor.confidence_threshold = <d>_confidence_threshold (chosen per case in the widest gap "
                    "between query probabilities so that 3..8 of 10 queries pass): prob = sigmoid(pred_logits) * "
                    "sigmoid(presence); keep prob > threshold (query order kept, no NMS, no sorting); boxes = "
                    "cxcywh->xyxy * (W,H,W,H) (not clipped); masks_logits = sigmoid(bilinear(pred_masks[keep], "
                    "(H,W), align_corners=False)); masks = masks_logits > 0.5.",
        fields={
            "<d>_confidence_threshold": "float, the threshold used",
            "<d>_threshold_gap": "float, distance between the two probabilities around the threshold",
            "<d>_post_keep": "bool (10,) which queries passed",
            "<d>_post_masks": "bool (N,1,H,W) state['masks'] at original size",
            "<d>_post_masks_prob": "float16 (N,1,H,W) state['masks_logits'] (probabilities; stored as float16 to "
                                   "save space; the float32 values equal bit-exactly "
                                   "sigmoid(F.interpolate(pred_masks[0,keep][:,None], (H,W), mode='bilinear', "
                                   "align_corners=False)), checked)",
            "<d>_post_boxes": "float32 (N,4) state['boxes'], pixel xyxy of the original image",
            "<d>_post_scores": "float32 (N,) state['scores']",
        }),
}


def pick_threshold(probs, lo=3, hi=8):
    """Confidence threshold keeping lo..hi of the queries, placed in the middle of the widest gap between
    consecutive probabilities (robust to tiny numerical differences)."""
    p = sorted(float(x) for x in probs)
    best = None
    for a, b in zip(p[:-1], p[1:], strict=True):
        n_keep = sum(x > 0.5 * (a + b) for x in p)
        if lo <= n_keep <= hi and (best is None or b - a > best[1]):
            best = (0.5 * (a + b), b - a)
    if best is None:
        raise RuntimeError(f"no threshold keeps {lo}..{hi} detections: {p}")
    return float(f"{best[0]:.6f}"), best[1]


def query_probabilities(r):
    """(10,) the probability of each query as the official post-processing computes it: sigmoid(class logit) *
    sigmoid(presence logit)."""
    return r["pred_logits"].sigmoid()[0, :, 0] * r["presence_logit_dec"].sigmoid().reshape(())


def processor_outputs(state):
    """The post-processed results in the processor's state after a prompt call."""
    return dict(post_masks=tensor_copy(state["masks"]), post_masks_prob=tensor_copy(state["masks_logits"]),
                post_boxes=tensor_copy(state["boxes"]), post_scores=tensor_copy(state["scores"]))


def check_and_compact(r, thr, image_hw):
    """Add ``post_keep`` to the case ``r``, check that the official masks are the bilinear upsampling of the kept
    queries' mask logits (probabilities bit-exact, masks = prob > 0.5), and store the probabilities as float16."""
    keep = query_probabilities(r) > thr
    r["post_keep"] = keep
    h, w = image_hw
    prob = torch.nn.functional.interpolate(r["pred_masks"][0, keep][:, None], (h, w), mode="bilinear",
                                           align_corners=False).sigmoid()
    assert torch.equal(prob, r["post_masks_prob"]) and torch.equal(prob > 0.5, r["post_masks"])
    r["post_masks_prob"] = r["post_masks_prob"].half()
