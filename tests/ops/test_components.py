"""Connected components (8-connectivity) and the small-region clean-up, against a plain flood-fill reference."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from sam3kit.ops.components import component_areas, fill_small_regions


def _areas_reference(a: np.ndarray) -> np.ndarray:
    """Breadth-first flood fill with 8 neighbours: the obviously-correct slow version."""
    h, w = a.shape
    out = np.zeros((h, w), np.int64)
    seen = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if not a[y, x] or seen[y, x]:
                continue
            comp, q = [], deque([(y, x)])
            seen[y, x] = True
            while q:
                cy, cx = q.popleft()
                comp.append((cy, cx))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = cy + dy, cx + dx
                        if 0 <= ny < h and 0 <= nx < w and a[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            q.append((ny, nx))
            for p in comp:
                out[p] = len(comp)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_component_areas_match_flood_fill(seed):
    a = np.random.default_rng(seed).random((3, 23, 17)) > 0.55
    got = component_areas(torch.from_numpy(a)).numpy()
    for i in range(3):
        assert np.array_equal(got[i], _areas_reference(a[i]))


def test_diagonal_pixels_are_connected():
    a = torch.tensor([[[1, 0], [0, 1]]], dtype=torch.bool)
    assert component_areas(a).tolist() == [[[2, 0], [0, 2]]]


def test_fill_small_regions():
    logits = torch.full((1, 8, 8), 5.0)
    logits[0, 2:4, 2:4] = -3.0  # a 4-pixel hole
    logits[0, 6:, :] = -1.0     # a 16-pixel background band touching the border
    out = fill_small_regions(logits, max_hole_area=4)
    assert torch.all(out[0, 2:4, 2:4] == 10.0)
    assert torch.equal(out[0, 6:], logits[0, 6:])  # 16 > 4: kept
    out = fill_small_regions(logits, max_hole_area=16)
    assert torch.all(out[0, 6:] == 10.0)  # border components count too (official semantics)
    # sprinkles: a lone foreground pixel in background
    bg = torch.full((1, 6, 6), -2.0)
    bg[0, 1, 1] = 3.0
    assert fill_small_regions(bg, max_sprinkle_area=1)[0, 1, 1] == -10.0
    assert torch.equal(fill_small_regions(bg), bg)
