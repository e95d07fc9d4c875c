"""The overlay helper: masks blended in their id's colour, contours, boxes, captions, prompt points."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sam3kit.errors import InputError
from sam3kit.io.overlay import caption, color, draw_overlay, overlay_records, overlay_result
from sam3kit.pipelines.results import PredictResult, SegmentResult

H, W = 120, 160


def _image():
    yy, xx = np.mgrid[:H, :W]
    return np.stack([xx * 255 // W, yy * 255 // H, np.full((H, W), 100)], axis=-1).astype(np.uint8)


def _disc(cy, cx, r):
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def test_colors_are_fixed_and_distinct():
    cs = [color(i) for i in range(20)]
    assert cs == [color(i) for i in range(20)]
    assert len(set(cs)) == 20 and all(0 <= v <= 255 for c in cs for v in c)


def test_blend_contour_and_untouched_background():
    img = _image()
    m = _disc(60, 50, 20)
    out = np.asarray(draw_overlay(img, [m], None, ids=[3], alpha=0.5))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    inner = _disc(60, 50, 15)
    expected = np.round(img[inner].astype(np.float64) * 0.5 + np.array(color(3)) * 0.5)
    assert np.abs(out[inner].astype(np.float64) - expected).max() <= 1
    assert np.array_equal(out[~_disc(60, 50, 22)], img[~_disc(60, 50, 22)])  # outside: the image as is
    edge = m & ~_disc(60, 50, 19)
    assert (out[edge] == np.array(color(3), np.uint8)).all(axis=1).mean() > 0.5  # contour in the id's colour
    # alpha 0 and no outline: the image unchanged
    assert np.array_equal(np.asarray(draw_overlay(img, [m], alpha=0.0, outline=False)), img)


def test_boxes_captions_points():
    img = _image()
    out = np.asarray(draw_overlay(img, None, [[20, 30, 100, 90]], ids=[1], captions=["1 dog 0.91"],
                                  points=[[130, 20], [140, 100]], point_labels=[1, 0], prompt_boxes=[[5, 5, 60, 60]]))
    assert (out[60, 20] == color(1)).all() and (out[60, 100] == color(1)).all()  # box sides
    assert (out[20, 130] == (40, 220, 60)).all() and (out[100, 140] == (235, 40, 40)).all()  # fg / bg clicks
    label_area = out[10:30, 20:80]  # caption box above the top-left corner, in the box colour
    assert (label_area == np.array(color(1), np.uint8)).all(axis=-1).mean() > 0.3
    white = (out == 255).all(axis=-1)
    assert white[5, 5:60].any() and not white[5, 5:60].all()  # dashed prompt box


def test_results_and_records(tmp_path):
    img = _image()
    Image.fromarray(img).save(tmp_path / "img.png")
    masks = np.stack([_disc(40, 40, 10), _disc(80, 110, 15)])
    seg = SegmentResult(masks=masks, boxes=np.array([[30, 30, 50, 50], [95, 65, 125, 95]], np.float32),
                        scores=np.array([0.9, 0.6], np.float32), presence=0.95, query_indices=np.array([1, 4]))
    a = overlay_result(tmp_path / "img.png", seg, label="dog")
    assert a.size == (W, H) and a.mode == "RGB"
    pred = PredictResult(masks=masks[[0, 1, 1]], iou_scores=np.array([0.3, 0.8, 0.5], np.float32),
                         object_score=0.9, low_res_logits=np.zeros((3, 8, 8), np.float32), best=1)
    b = overlay_result(img, pred, points=[[40, 40]], box=[20, 20, 60, 60])
    assert b.size == (W, H)
    recs = [{"id": 0, "label": "dog", "score": 0.9, "iou": None, "box": [30, 30, 50, 50]},
            {"id": 7, "label": "points", "score": None, "iou": 0.8, "box": None, "best": True}]
    assert caption(recs[0]) == "0 dog 0.90" and caption(recs[1]) == "7* points iou=0.80"
    c = np.asarray(overlay_records(img, recs, list(masks)))
    inner = _disc(80, 110, 10)
    assert np.abs(c[inner].astype(int) - (img[inner] * 0.55 + np.array(color(7)) * 0.45)).max() <= 1
    with pytest.raises(InputError, match="image size"):
        draw_overlay(img, [np.zeros((10, 10), bool)])


@pytest.mark.parametrize("size", [32, 48])
def test_captions_leave_small_images_visible(size):
    """A caption never covers more than a small corner of the image: on a 32x32 image the full "0 dog 0.91"
    cannot fit, so at most the id is drawn (its box within half the width and a third of the height)."""
    img = np.full((size, size, 3), 100, np.uint8)
    m = np.zeros((size, size), bool)
    m[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
    plain = np.asarray(draw_overlay(img, [m], [[size / 4, size / 4, 3 * size / 4, 3 * size / 4]], ids=[0]))
    captioned = np.asarray(draw_overlay(img, [m], [[size / 4, size / 4, 3 * size / 4, 3 * size / 4]], ids=[0],
                                        captions=["0 dog 0.91"]))
    changed = (plain != captioned).any(axis=-1)
    assert changed.mean() <= 1 / 6  # within W/2 x H/3
    ys, xs = np.nonzero(changed)
    if ys.size:
        assert xs.max() - xs.min() + 1 <= size / 2 and ys.max() - ys.min() + 1 <= size / 3


def test_large_images_keep_full_captions():
    img = np.full((600, 800, 3), 100, np.uint8)
    from PIL import Image, ImageDraw

    from sam3kit.io.overlay import fit_caption

    draw = ImageDraw.Draw(Image.fromarray(img))
    text, font, pad = fit_caption(draw, "3 yellow school bus 0.91", 800, 600, 16)
    assert text == "3 yellow school bus 0.91"
    assert fit_caption(draw, "3 yellow school bus 0.91", 80, 60, 11)[0] == "3"  # only the id fits
    assert fit_caption(draw, "3 dog", 8, 8, 11) is None  # nothing fits
