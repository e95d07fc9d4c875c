"""The click grid of automatic mask generation: evenly spaced points in the unit square (SAM 1's grid).

Point (i, j) of an n x n grid sits at the centre of cell (i, j): x = (j + 0.5) / n, y = (i + 0.5) / n; the points
are listed row by row (y outer, x inner). Scaled by a crop's (width, height) they are pixel coordinates of that
crop, continuous (pixel centres at k + 0.5).
"""

from __future__ import annotations

import numpy as np


def point_grid(n: int) -> np.ndarray:
    """(n * n, 2) float64 (x, y) in [0, 1]: the centres of an n x n grid of cells, row by row."""
    if n < 1:
        raise ValueError(f"a point grid needs n >= 1, got {n}")
    side = np.linspace(0.5 / n, 1.0 - 0.5 / n, n)
    ys, xs = np.meshgrid(side, side, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def crop_points(n: int, width: int, height: int) -> np.ndarray:
    """(n * n, 2) float64 pixel (x, y) of a width x height crop: ``point_grid(n)`` scaled to it."""
    return point_grid(n) * np.array([width, height], dtype=np.float64)
