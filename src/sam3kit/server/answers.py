"""The JSON of the library's results, and masks turned back into a ``mask_input``.

Masks are COCO RLE ``{"size": [H, W], "counts": str}`` at the original size (``sam3kit.io.rle``); boxes pixel
xyxy of the original image; scores floats. Each function gives exactly the library's numbers (float32 values as
Python floats).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..io.rle import encode_rle

MASK_INPUT_LOGIT = 10.0
"""The logit a mask pixel becomes in a ``mask_input`` made from a mask (+10 inside, -10 outside): the value the
video sessions give a stored mask whose logits they no longer hold."""


def segment_answer(result, segment_id: str) -> dict[str, Any]:
    """A ``SegmentResult`` -> ``{"segment_id", "objects": [{"score", "box", "mask"}], "presence"}`` (the
    detector's query order, as the library)."""
    return {"segment_id": segment_id,
            "objects": [{"score": float(result.scores[k]), "box": [float(v) for v in result.boxes[k]],
                         "mask": encode_rle(result.masks[k])} for k in range(len(result))],
            "presence": float(result.presence)}


def predict_answer(result) -> dict[str, Any]:
    """A ``PredictResult`` -> ``{"masks": [RLE, ...], "iou_scores", "object_score", "best"}``."""
    return {"masks": [encode_rle(m) for m in result.masks],
            "iou_scores": [float(v) for v in result.iou_scores],
            "object_score": float(result.object_score), "best": int(result.best)}


def frame_answer(result) -> dict[str, Any]:
    """A video ``FrameResult`` -> one line of ``sam3kit track``'s ``frames.jsonl``: ``{"frame_index", "objects":
    [{"id", "score", "box", "mask", "concept"}]}``, the objects of the frame in creation order; ``concept`` is the
    index of the concept that found the object (``add_concept``), -1 for an object made by clicks, a box or a
    mask."""
    concepts = getattr(result, "concepts", None)
    return {"frame_index": int(result.frame_index),
            "objects": [{"id": int(result.object_ids[k]), "score": float(result.scores[k]),
                         "box": [float(v) for v in result.boxes[k]], "mask": encode_rle(result.masks[k]),
                         "concept": int(concepts[k]) if concepts is not None else -1} for k in range(len(result))]}


def mask_to_mask_input(mask: np.ndarray, size: int) -> np.ndarray:
    """A (H, W) bool mask of the original image -> a (size, size) float32 ``mask_input`` for ``predict``.

    The model sees the image resized to a square (aspect not kept), and its low-resolution masks cover that square
    on a ``size`` x ``size`` grid (4g: 288 at the released size). The mask becomes +-``MASK_INPUT_LOGIT`` logits,
    resized to that grid with an antialiased bilinear filter, so a click can refine a mask found by ``segment``
    (or any mask) the way it refines an earlier ``predict``'s ``low_res_logits``.
    """
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))
    logits = torch.where(m, MASK_INPUT_LOGIT, -MASK_INPUT_LOGIT).float()[None, None]
    low = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return low[0, 0].numpy()
