"""Each step of segment-everything against a literal reference written here from SAM 1's published algorithm
(``SamAutomaticMaskGenerator`` and its helpers): the click grid, the crop boxes, the stability score, mask boxes,
box NMS with its tie order, the uncrop of boxes, points and masks, the crop-edge filter and the small-region
clean-up; and the counts and boxes at the image size computed without upsampling against the upsampled masks. The
references are plain loops over the definitions, independent of the implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sam3kit.pipelines.everything.boxes import mask_boxes
from sam3kit.pipelines.everything.crops import crop_boxes, near_crop_edge, uncrop_boxes, uncrop_mask, uncrop_points
from sam3kit.pipelines.everything.grid import crop_points, point_grid
from sam3kit.pipelines.everything.nms import nms
from sam3kit.pipelines.everything.regions import clean_small_regions, fill_small_holes, remove_small_islands
from sam3kit.pipelines.everything.stability import stability_from_counts, stability_score
from sam3kit.pipelines.everything.upsampled import upsampled_counts


# ----------------------------------------------------------------------------- grid
def test_point_grid_is_cell_centres_row_by_row():
    assert point_grid(1).tolist() == [[0.5, 0.5]]
    assert point_grid(2).tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    n = 32
    ref = [[(j + 0.5) / n, (i + 0.5) / n] for i in range(n) for j in range(n)]  # y outer, x inner
    np.testing.assert_allclose(point_grid(n), ref, rtol=0, atol=1e-15)
    # scaled to a crop: pixel coordinates of the crop (x by width, y by height)
    np.testing.assert_allclose(crop_points(2, 100, 60), [[25, 15], [75, 15], [25, 45], [75, 45]], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- crops
def test_crop_boxes_literal():
    # H x W = 1000 x 1500, SAM 1's default ratio 512 / 1500, two layers, worked out by hand:
    # layer 1: overlap int(512/1500 * 1000 * 2/2) = 341, crop 921 x 671, starts x 0, 580 and y 0, 330
    # layer 2: overlap int(512/1500 * 1000 * 2/4) = 170, crop 503 x 378, starts x 0, 333, 666, 999, y 0, 208, 416, 624
    boxes, layers = crop_boxes(1000, 1500, 2, 512 / 1500)
    layer1 = [[0, 0, 921, 671], [0, 330, 921, 1000], [580, 0, 1500, 671], [580, 330, 1500, 1000]]
    layer2 = [[x, y, min(x + 503, 1500), min(y + 378, 1000)] for x in (0, 333, 666, 999) for y in (0, 208, 416, 624)]
    assert boxes == [[0, 0, 1500, 1000]] + layer1 + layer2
    assert layers == [0] + [1] * 4 + [2] * 16
    assert layer2[3] == [0, 624, 503, 1000] and layer2[-1] == [999, 624, 1500, 1000]  # cut at the border
    assert crop_boxes(40, 30, 0, 0.5) == ([[0, 0, 30, 40]], [0])


def test_crop_boxes_match_the_formula_on_other_sizes():
    for (h, w, n_layers, ratio) in ((37, 91, 3, 0.2), (600, 400, 2, 0.0), (5, 5, 1, 0.9)):
        boxes, layers = crop_boxes(h, w, n_layers, ratio)
        ref = [[0, 0, w, h]]
        for i in range(n_layers):
            n = 2 ** (i + 1)
            ov = int(ratio * min(h, w) * (2 / n))
            cw, ch = int(math.ceil((ov * (n - 1) + w) / n)), int(math.ceil((ov * (n - 1) + h) / n))
            for x0 in [int((cw - ov) * k) for k in range(n)]:
                for y0 in [int((ch - ov) * k) for k in range(n)]:
                    ref.append([x0, y0, min(x0 + cw, w), min(y0 + ch, h)])
        assert boxes == ref and len(layers) == len(ref)


def test_uncrop_boxes_points_and_masks():
    crop = [10, 20, 40, 35]
    b = torch.tensor([[0.0, 0.0, 5.0, 6.0], [1.5, 2.0, 29.0, 14.0]])
    assert uncrop_boxes(b, crop).tolist() == [[10.0, 20.0, 15.0, 26.0], [11.5, 22.0, 39.0, 34.0]]
    p = np.array([[0.0, 0.0], [3.25, 4.5]])
    assert uncrop_points(p, crop).tolist() == [[10.0, 20.0], [13.25, 24.5]]
    m = np.zeros((15, 30), bool)
    m[0, 0] = m[14, 29] = m[3, 7] = True
    full = uncrop_mask(m, crop, 50, 60)
    assert full.shape == (50, 60) and full.sum() == 3
    assert full[20, 10] and full[34, 39] and full[23, 17]
    whole = np.ones((50, 60), bool)
    assert uncrop_mask(whole, [0, 0, 60, 50], 50, 60) is whole  # the whole image: nothing to do


def test_near_crop_edge_literal():
    # crop [30, 30, 80, 80] of a 100 x 100 image; boxes in crop coordinates
    crop, image = [30, 30, 80, 80], [0, 0, 100, 100]
    boxes = torch.tensor([
        [25.0, 25.0, 29.0, 29.0],  # image [55, 55, 59, 59]: 25 and 21 px from the crop's sides -> inside
        [0.0, 10.0, 10.0, 20.0],   # image x0 = 30 = crop x0, 30 px from the image's 0 -> near the crop edge
        [15.0, 15.0, 30.0, 31.0],  # image [45, 45, 60, 61]: x0 15 from crop x0 (<= 20) -> near
        [21.0, 21.0, 29.0, 29.0],  # 21 px from crop x0/y0, 21 from x1/y1 -> inside
        [20.0, 25.0, 25.0, 25.0],  # exactly 20 px from crop x0 -> near (|d| <= atol, as torch.isclose)
    ])
    assert near_crop_edge(boxes, crop, image).tolist() == [False, True, True, False, True]
    # a crop side on the image border is not a cut: [0, 0, 50, 50] in a 50 x 100 image
    b = torch.tensor([[0.0, 0.0, 50.0, 10.0], [0.0, 0.0, 49.0, 40.0]])
    # box 0 touches x0 = 0 (image border, fine), y0 = 0 (border), x1 = 50 = crop x1 (50 px from image's 100) -> near
    # box 1: x1 = 49 within 20 of the crop's 50 -> near
    assert near_crop_edge(b, [0, 0, 50, 50], [0, 0, 100, 50]).tolist() == [True, True]
    b = torch.tensor([[0.0, 0.0, 25.0, 49.0]])  # y1 = 49: near the crop's y1 = 50, which is the image's -> fine
    assert near_crop_edge(b, [0, 0, 50, 50], [0, 0, 100, 50]).tolist() == [False]


# ----------------------------------------------------------------------------- stability
def test_stability_score_literal():
    logits = torch.tensor([[[2.0, 0.5, -0.5], [1.5, -2.0, 0.9], [-1.5, 3.0, 1.0]]])
    # > +1: 2, 1.5, 3 (1.0 is not > 1) -> 3; > -1: all but -2 and -1.5 -> 7
    assert stability_score(logits, 0.0, 1.0).tolist() == [pytest.approx(3 / 7)]
    # offset 0.4 around threshold 0.5: > 0.9: 2, 1.5, 3, 1.0 -> 4; > 0.1: 2, 0.5, 1.5, 0.9, 3, 1.0 -> 6
    assert stability_score(logits, 0.5, 0.4).tolist() == [pytest.approx(4 / 6)]
    empty = torch.full((1, 4, 4), -5.0)
    assert math.isnan(stability_score(empty).item())  # 0 / 0: dropped by a >= filter
    assert stability_score(torch.full((2, 3, 3), 7.0)).tolist() == [1.0, 1.0]


def test_stability_score_matches_the_definition_on_random_logits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 17, 23, generator=g) * 3
    for thr, off in ((0.0, 1.0), (0.3, 0.25)):
        ref = [float((m > thr + off).sum()) / float((m > thr - off).sum()) for m in logits]
        assert stability_score(logits, thr, off).tolist() == pytest.approx(ref, abs=1e-7)


# ----------------------------------------------------------------------------- boxes
def test_mask_boxes_are_inclusive_and_zero_when_empty():
    m = torch.zeros(3, 6, 8, dtype=torch.bool)
    m[0, 2, 3] = True  # one pixel: x0 == x1
    m[1, 1:5, 2:7] = True
    m[1, 5, 0] = True
    assert mask_boxes(m).tolist() == [[3, 2, 3, 2], [0, 1, 6, 5], [0, 0, 0, 0]]
    assert mask_boxes(torch.zeros(0, 4, 4, dtype=torch.bool)).shape == (0, 4)


# ----------------------------------------------------------------------------- counts and boxes at the image size
def _upsample(lg: torch.Tensor, H: int, W: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(lg[:, None].float(), size=(H, W), mode="bilinear",
                                           align_corners=False)[:, 0]


def test_upsampled_counts_literal():
    # one row profile -3, -1, 2, 5 (two rows alike), upsampled 4 -> 8 columns (2 rows kept): output pixel j samples
    # source x = (j + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25 (past the
    # last centre: 5); the line from -1 (x = 1) to 2 (x = 2) crosses 0 at x = 4/3, so j = 4..7 are above 0
    # (1.25 is below, 1.75 above): 4 per row, box x 4..7; above 1: crossing at 5/3 -> j = 4 (1.75), 5, 6, 7 -> 4;
    # above -1: the line from -3 to -1 reaches -1 only at x = 1 (not above) -> j = 3..7 -> 5 per row
    lg = torch.tensor([[-3.0, -1.0, 2.0, 5.0]]).expand(2, 4)[None]
    counts, boxes = upsampled_counts(lg, 2, 8, [0.0, 1.0, -1.0])
    assert counts.tolist() == [[8, 8, 10]] and boxes.tolist() == [[4, 0, 7, 1]]
    up = _upsample(lg, 2, 8)
    assert [(up > t).sum().item() for t in (0.0, 1.0, -1.0)] == [8, 8, 10]
    assert upsampled_counts(torch.full((2, 5, 5), -1.0), 10, 10, [0.0])[1].tolist() == [[0] * 4, [0] * 4]


def test_upsampled_counts_equal_the_upsampled_masks():
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        h, w = int(torch.randint(2, 20, (1,), generator=g)), int(torch.randint(2, 20, (1,), generator=g))
        H, W = int(torch.randint(1, 70, (1,), generator=g)), int(torch.randint(1, 70, (1,), generator=g))
        if trial % 3:  # smooth, mask-like
            lg = torch.nn.functional.interpolate(torch.randn(4, 1, 3, 3, generator=g), size=(h, w),
                                                 mode="bicubic")[:, 0] * 6
        else:  # noise: crossings everywhere; up- and downsampling
            lg = torch.randn(4, h, w, generator=g) * 3
        lg[0] = -5.0  # empty
        thresholds = [1.0, -1.0, 0.0, 0.37]
        counts, boxes = upsampled_counts(lg, H, W, thresholds, 0.0)
        up = _upsample(lg, H, W)
        assert counts.tolist() == [[int((u > t).sum()) for t in thresholds] for u in up], (trial, h, w, H, W)
        assert boxes.tolist() == mask_boxes(up > 0).tolist(), (trial, h, w, H, W)
    # at the decoder's own size the counts are the low-resolution ones
    lg = torch.randn(5, 9, 11, generator=g) * 2
    counts, boxes = upsampled_counts(lg, 9, 11, [1.0, -1.0], 0.3)
    assert counts[:, 0].tolist() == (lg > 1).flatten(1).sum(1).tolist()
    assert boxes.tolist() == mask_boxes(lg > 0.3).tolist()
    s = stability_from_counts(counts[:, 0], counts[:, 1])
    assert s.tolist() == stability_score(lg, 0.0, 1.0).tolist()


# ----------------------------------------------------------------------------- NMS
def _nms_reference(boxes: list, scores: list, thr: float) -> list:
    """torchvision's CPU nms, written out: visit by decreasing score (stable), keep, suppress IoU > thr."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable
    b = np.asarray(boxes, dtype=np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    dead, keep = set(), []
    for a, i in enumerate(order):
        if i in dead:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            if j in dead:
                continue
            w = max(np.float32(0), min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
            h = max(np.float32(0), min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
            inter = np.float32(w * h)
            with np.errstate(invalid="ignore"):
                iou = inter / (area[i] + area[j] - inter)
            if float(iou) > thr:
                dead.add(j)
    return keep


def test_nms_literal_with_ties():
    boxes = [
        [0, 0, 10, 10],   # 0: 0.8
        [0, 0, 10, 10],   # 1: 0.8, the same box: a tie, so 0 (first) is kept and suppresses it
        [20, 20, 30, 30],  # 2: 0.8, disjoint: kept
        [0, 0, 10, 7],    # 3: 0.9, IoU with 0 and 1 is exactly 0.7: not > 0.7, both survive it
        [0, 0, 10, 7.1],  # 4: 0.5, IoU with 3 = 70 / 71: suppressed by 3
        [0, 0, 0, 0],     # 5: 0.85, zero area (SAM 1's box of an empty mask)
        [0, 0, 0, 0],     # 6: 0.85, zero area too: IoU 0/0 = NaN never suppresses
    ]
    scores = [0.8, 0.8, 0.8, 0.9, 0.5, 0.85, 0.85]
    got = nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores), 0.7).tolist()
    assert got == [3, 5, 6, 0, 2]
    assert got == _nms_reference(boxes, scores, 0.7)
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.7).tolist() == []
    # threshold 1: nothing is suppressed (IoU is never > 1); order by score, ties in input order
    assert nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores), 1.0).tolist() == [3, 5, 6, 0, 1, 2, 4]


def test_nms_matches_the_reference_on_random_boxes_with_many_ties():
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(1, 60))
        xy = rng.integers(0, 40, (n, 2)).astype(np.float32)
        wh = rng.integers(0, 25, (n, 2)).astype(np.float32)
        boxes = np.concatenate([xy, xy + wh], axis=1)
        scores = rng.integers(0, 4, n).astype(np.float32) / 4  # few distinct values: many ties
        for thr in (0.0, 0.3, 0.7):
            got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
            assert got == _nms_reference(boxes.tolist(), scores.tolist(), thr), (trial, thr)


# ----------------------------------------------------------------------------- small regions
def _regions_reference(mask: np.ndarray, area: float, mode: str) -> tuple[np.ndarray, bool]:
    """SAM 1's remove_small_regions written out: 8-connected components of the working mask (mask, or its
    complement for holes) by flood fill in raster order; components with fewer than ``area`` pixels are small."""
    holes = mode == "holes"
    work = ~mask if holes else mask.copy()
    H, W = work.shape
    label = np.zeros((H, W), int)
    sizes = [0]
    for y in range(H):
        for x in range(W):
            if work[y, x] and not label[y, x]:
                n = len(sizes)
                stack, size = [(y, x)], 0
                label[y, x] = n
                while stack:
                    cy, cx = stack.pop()
                    size += 1
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < H and 0 <= nx < W and work[ny, nx] and not label[ny, nx]:
                                label[ny, nx] = n
                                stack.append((ny, nx))
                sizes.append(size)
    small = [i for i in range(1, len(sizes)) if sizes[i] < area]
    if not small:
        return mask, False
    if holes:
        fill = [0] + small  # label 0 of the complement = the mask itself
    else:
        fill = [i for i in range(1, len(sizes)) if i not in small]
        if not fill:
            fill = [int(np.argmax(sizes[1:])) + 1]
    return np.isin(label, fill), True


def test_small_regions_literal():
    m = np.array([
        [0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 0, 0],
        [0, 1, 0, 1, 1, 0, 1],  # (2, 2) a one-pixel hole; (2, 6) an island ...
        [0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 1, 0],  # ... (4, 5) touches the big square diagonally: 8-connected, part of it
        [1, 0, 0, 0, 0, 0, 0],  # (5, 0): an island at the border
    ], dtype=bool)
    filled, changed = fill_small_holes(m, 2)
    assert changed and filled[2, 2] and filled.sum() == m.sum() + 1
    cleaned, changed = remove_small_islands(filled, 2)
    assert changed and not cleaned[2, 6] and not cleaned[5, 0] and cleaned[4, 5]
    both, changed = clean_small_regions(m, 2)
    assert changed and np.array_equal(both, cleaned)
    # nothing small: unchanged, the same array
    same, changed = clean_small_regions(cleaned, 1)
    assert not changed and same is cleaned
    # every island small: the largest stays (the first in raster order among equals)
    dots = np.zeros((5, 5), bool)
    dots[0, 0] = dots[4, 4] = True
    dots[2, 2:4] = True
    kept, changed = remove_small_islands(dots, 10)
    assert changed and kept.sum() == 2 and kept[2, 2] and kept[2, 3]
    pair = np.zeros((5, 5), bool)
    pair[0, 0] = pair[4, 4] = True
    kept, _ = remove_small_islands(pair, 10)
    assert kept[0, 0] and not kept[4, 4]
    # a small background region at the image border counts as a hole (SAM 1 does not exempt the border)
    ring = np.ones((6, 6), bool)
    ring[0, 0] = False
    filled, changed = fill_small_holes(ring, 2)
    assert changed and filled.all()


def test_small_regions_match_the_reference_on_random_masks():
    rng = np.random.default_rng(5)
    for trial in range(30):
        m = rng.random((int(rng.integers(3, 14)), int(rng.integers(3, 14)))) < rng.uniform(0.2, 0.8)
        area = float(rng.integers(1, 8))
        for mode, fn in (("holes", fill_small_holes), ("islands", remove_small_islands)):
            got, changed = fn(m, area)
            ref, ref_changed = _regions_reference(m, area, mode)
            assert changed == ref_changed and np.array_equal(got, ref), (trial, mode)
