"""Connected components of binary masks and the official small-region clean-up of mask logits.

Connectivity is 8 (the official CPU path uses ``skimage.measure.label`` with its default full connectivity);
labelling runs on the CPU with ``scipy.ndimage.label``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_EIGHT = np.ones((3, 3), dtype=bool)


def component_areas(binary: Tensor) -> Tensor:
    """(N, H, W) bool -> (N, H, W) int64: for every True pixel the size of its 8-connected component, else 0."""
    from scipy import ndimage

    arr = binary.detach().cpu().numpy().astype(bool)
    out = np.zeros(arr.shape, dtype=np.int64)
    for i in range(arr.shape[0]):
        labels, n = ndimage.label(arr[i], structure=_EIGHT)
        if n:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            out[i] = sizes[labels]
    return torch.from_numpy(out).to(binary.device)


def fill_small_regions(logits: Tensor, *, max_hole_area: float = 0.0, max_sprinkle_area: float = 0.0,
                       threshold: float = 0.0, offset: float = 10.0) -> Tensor:
    """The official interactive post-processing of low-resolution mask logits (N, H, W).

    Background components (logit <= threshold) of at most ``max_hole_area`` pixels become foreground
    (``threshold + offset``); then foreground components of at most ``max_sprinkle_area`` pixels become background
    (``threshold - offset``). Note that, as in the official code, a "hole" is any small background component,
    including one that touches the border.
    """
    out = logits
    if max_hole_area > 0:
        bg = logits <= threshold
        hole = bg & (component_areas(bg) <= max_hole_area)
        out = torch.where(hole, torch.full_like(out, threshold + offset), out)
    if max_sprinkle_area > 0:
        fg = out > threshold
        sprinkle = fg & (component_areas(fg) <= max_sprinkle_area)
        out = torch.where(sprinkle, torch.full_like(out, threshold - offset), out)
    return out
