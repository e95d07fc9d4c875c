"""SAM 1's stability score of mask logits: how little the mask changes when its threshold moves.

score = |logits > threshold + offset| / |logits > threshold - offset|, the IoU of the two masks (the first lies
inside the second). NaN when both are empty, so that a ``>=`` filter drops the mask (as in SAM 1). The masks of
segment-everything are scored at the image size from counts (``upsampled.upsampled_counts``).
"""

from __future__ import annotations

from torch import Tensor


def stability_score(logits: Tensor, threshold: float = 0.0, offset: float = 1.0) -> Tensor:
    """(N, H, W) mask logits -> (N,) float32 stability scores (NaN for a mask empty at both thresholds)."""
    flat = logits.flatten(-2)
    return stability_from_counts((flat > threshold + offset).sum(-1), (flat > threshold - offset).sum(-1))


def stability_from_counts(inter: Tensor, union: Tensor) -> Tensor:
    """(N,) pixel counts above threshold + offset and above threshold - offset -> (N,) float32 scores (SAM 1
    divides its int32 counts in float32)."""
    return inter.float() / union.float()
