"""SAM 1's small-region clean-up of kept masks: small holes filled, small islands removed.

Components are 8-connected (``scipy.ndimage.label``, labels in raster order of their first pixel). "Small" means
fewer than ``min_area`` pixels (strictly). Holes are the small background components, those touching the image
border included. Islands are the small foreground components; when every island is small, the largest one stays
(the first in raster order among equals).
"""

from __future__ import annotations

import numpy as np

_EIGHT = np.ones((3, 3), dtype=bool)


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) bool -> (labels (H, W) int32 with 0 outside ``mask``, sizes (n + 1,) with sizes[0] = 0)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=_EIGHT)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    return labels, sizes


def fill_small_holes(mask: np.ndarray, min_area: float) -> tuple[np.ndarray, bool]:
    """(H, W) bool -> (mask with every background component of < ``min_area`` pixels filled, whether it changed)."""
    labels, sizes = _components(~mask)
    small = (sizes < min_area) & (np.arange(sizes.size) > 0)
    if not small.any():
        return mask, False
    return mask | small[labels], True


def remove_small_islands(mask: np.ndarray, min_area: float) -> tuple[np.ndarray, bool]:
    """(H, W) bool -> (mask without its foreground components of < ``min_area`` pixels, whether it changed); the
    largest component stays when all are small."""
    labels, sizes = _components(mask)
    fg = np.arange(sizes.size) > 0
    small = (sizes < min_area) & fg
    if not small.any():
        return mask, False
    keep = fg & ~small
    if not keep.any():
        keep = np.zeros_like(keep)
        keep[int(np.argmax(sizes[1:])) + 1] = True
    return keep[labels], True


def clean_small_regions(mask: np.ndarray, min_area: float) -> tuple[np.ndarray, bool]:
    """Holes filled, then islands removed (SAM 1's order); returns the mask and whether either step changed it."""
    mask, filled = fill_small_holes(mask, min_area)
    mask, removed = remove_small_islands(mask, min_area)
    return mask, filled or removed
