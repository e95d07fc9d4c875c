"""8-connected components and the official small-region clean-up of mask logits, in numpy.

``sam3kit.ops.components`` is the torch form (labelling with scipy); this one needs numpy only. Labelling works on
runs: the foreground of every row is cut into runs of consecutive pixels, runs of neighbouring rows that touch
(8-connectivity: columns within one of each other) are joined with a union-find over the runs (few, compared with
pixels), and each pixel gets the pixel count of its run's component.
"""

from __future__ import annotations

import numpy as np


def component_areas(binary: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, H, W) int64: for every True pixel the size of its 8-connected component, else 0."""
    fg = np.asarray(binary, dtype=bool)
    n, h, w = fg.shape
    out = np.zeros(fg.shape, dtype=np.int64)
    if fg.size == 0 or not fg.any():
        return out
    rows = fg.reshape(n * h, w)
    starts = rows & ~np.pad(rows, ((0, 0), (1, 0)))[:, :-1]
    run = np.cumsum(starts.ravel()).reshape(rows.shape) * rows  # run id (1..R) per foreground pixel, 0 elsewhere
    count = int(run.max())
    length = np.bincount(run.ravel(), minlength=count + 1)
    length[0] = 0
    # runs of row r touching runs of row r + 1 of the same mask (not across the last row of a mask), one pair per
    # change along the row (the pixels of two touching runs repeat the same pair)
    same = (np.arange(n * h - 1) % h) != h - 1
    above, below = run[:-1][same], run[1:][same]
    pairs = [_changes(above, below), _changes(above[:, :-1], below[:, 1:]), _changes(above[:, 1:], below[:, :-1])]
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    parent = _union(count + 1, a, b)
    area = np.bincount(parent, weights=length, minlength=count + 1).astype(np.int64)
    return np.where(rows, area[parent[run]], 0).reshape(fg.shape)


def _changes(above: np.ndarray, below: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (run above, run below) pairs of foreground pixel pairs (rows, W), once per change along each row."""
    both = (above > 0) & (below > 0)
    new = np.ones_like(both)
    new[:, 1:] = (above[:, 1:] != above[:, :-1]) | (below[:, 1:] != below[:, :-1])
    keep = both & new
    return above[keep], below[keep]


def _union(size: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Roots (the smallest member) of the components of the graph on ``size`` nodes with edges ``a[i] - b[i]``."""
    parent = np.arange(size)
    while a.size:
        ra, rb = parent[a], parent[b]
        lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
        moving = lo != hi
        if not moving.any():
            break
        a, b, lo, hi = a[moving], b[moving], lo[moving], hi[moving]
        np.minimum.at(parent, hi, lo)  # hook the larger root under the smaller one: parents only decrease
        while True:  # pointer jumping until every node points at its root
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
    return parent


def fill_small_regions(logits: np.ndarray, *, max_hole_area: float = 0.0, max_sprinkle_area: float = 0.0,
                       threshold: float = 0.0, offset: float = 10.0) -> np.ndarray:
    """The official interactive post-processing of low-resolution mask logits (N, H, W) float32, as
    ``sam3kit.ops.components.fill_small_regions``: background components (logit <= threshold) of at most
    ``max_hole_area`` pixels become foreground (``threshold + offset``), then foreground components of at most
    ``max_sprinkle_area`` pixels become background (``threshold - offset``)."""
    out = np.asarray(logits, dtype=np.float32)
    if max_hole_area > 0:
        bg = out <= threshold
        out = np.where(bg & (component_areas(bg) <= max_hole_area), np.float32(threshold + offset), out)
    if max_sprinkle_area > 0:
        fg = out > threshold
        out = np.where(fg & (component_areas(fg) <= max_sprinkle_area), np.float32(threshold - offset), out)
    return out.astype(np.float32)
