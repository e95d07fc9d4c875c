"""The official post-processing of the image predictors in numpy (``sam3kit.pipelines.postprocess`` is the torch
form): detection scores and the bilinear upsampling of mask logits to the original size. No PyTorch here.

``upsample_logits`` computes what ``F.interpolate(mode="bilinear", align_corners=False)`` computes, in float32:
source coordinate ``scale * (i + 0.5) - 0.5`` (clamped at 0) with ``scale = in / out``, and
``w0h (w0w a + w1w b) + w1h (w0w c + w1w d)``. Torch's CPU kernel rounds its weights differently: the two agree
within 1e-6 of the largest |logit| (torch's own float32 error against a float64 computation; this one's is
smaller), so only pixels whose logit is within that of the threshold can differ.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 logistic function (no overflow warnings for large |x|)."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def detection_scores(logits: np.ndarray, presence_logits: np.ndarray) -> np.ndarray:
    """(B, Q) class logits and (B,) presence logits -> (B, Q) float32 ``sigmoid(logit) * sigmoid(presence)``."""
    return sigmoid(logits) * sigmoid(presence_logits)[:, None]


def upsample_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w) low-resolution logits -> (N, height, width) float32 logits at the original size."""
    x = np.asarray(logits, dtype=np.float32)
    if x.shape[0] == 0:
        return np.zeros((0, height, width), dtype=np.float32)
    i0h, i1h, w0h, w1h = _axis(x.shape[1], height)
    i0w, i1w, w0w, w1w = _axis(x.shape[2], width)
    rows = w0w * x[:, :, i0w] + w1w * x[:, :, i1w]  # (N, h, width)
    return w0h[:, None] * rows[:, i0h] + w1h[:, None] * rows[:, i1h]


def _axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    scale = np.float32(in_size) / np.float32(out_size)
    src = scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    w0 = (np.float32(1.0) - w1).astype(np.float32)
    return i0, i1, w0, w1
