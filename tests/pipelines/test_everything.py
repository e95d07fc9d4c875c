"""``ImagePredictor.segment_everything`` as a whole, on a tiny model.

Two heads give the masks:

- the tiny model's own interactive head, with random weights scaled (``_amplified``) so that its logits reach a few
  units and its IoU predictions spread (plain random weights give logits of +-0.02 that no threshold separates);
  its masks are noise, whose boxes span the image;
- ``DiscHead``, a stand-in for ``Tracker.predict`` with masks known in advance (discs around the click), so that
  NMS, crops and the small-region clean-up have shapes to work on.

Both go through the same path as ``predict`` (``Sam3Model.predict_masks``). On an image of the decoder's own
resolution (4g x 4g = 32 x 32 here) the upsampling is the identity, so SAM 1's algorithm, written out here at full
resolution (``sam1_reference``) on ``predict_batch``'s outputs (one batch with the same clicks: the same numbers),
must give exactly the same records. On other sizes: every record's mask is ``predict`` on its click, no two boxes
overlap above the NMS threshold, records come in SAM 1's order.
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.errors import InputError
from sam3kit.io.rle import decode_rle
from sam3kit.model.features import TrackerOutput
from sam3kit.model.sam3 import Sam3Model
from sam3kit.ops.components import fill_small_regions
from sam3kit.pipelines.everything import MAX_POINTS_PER_SIDE, EverythingOptions
from sam3kit.pipelines.everything.crops import crop_boxes
from sam3kit.pipelines.everything.regions import clean_small_regions
from sam3kit.pipelines.postprocess import upsample_logits

from fixtures.weights import randomize_

LOWRES = 32  # 4g of Sam3Config.tiny()
SIZE = 112  # its model input


def _amplified(model: Sam3Model) -> Sam3Model:
    """Random weights scaled so that the head's masks and scores vary: the two-way transformer and the IoU head x3
    (sharper attention, spread IoU), the hypernetworks' last layer x3000 (logits of a few units)."""
    dec = model.tracker_model.mask_decoder
    with torch.no_grad():
        for name, p in dec.named_parameters():
            if p.dim() >= 2 and "norm" not in name and (name.startswith("transformer") or "iou_prediction" in name):
                p.mul_(3)
        for mlp in dec.output_hypernetworks_mlps:
            list(mlp.parameters())[-2].mul_(3000)
        for p in model.tracker_model.prompt_encoder.point_embed.parameters():
            p.mul_(10)
    return model


@pytest.fixture(scope="module")
def model():
    return _amplified(randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=11))


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class DiscHead:
    """Stand-in for ``Tracker.predict``: for a click at model-input pixel (x, y), candidate mask m is a disc of
    radius ``RADII[m]`` low-resolution pixels around it (logit = 3 * (radius - distance), clamped to +-32), with a
    predicted IoU in [0.5, 0.99) that is a fixed pseudo-random function of the click and m. ``specks``: every mask
    also has a 2 x 2 island near the top-right corner and discs 1, 2 a 2 x 2 hole at the click.
    ``calls`` records the batch size of every call."""

    RADII = (2.5, 5.0, 9.0)

    def __init__(self, specks: bool = False) -> None:
        self.specks = specks
        self.calls: list[int] = []

    def __call__(self, features, points, point_labels, boxes=None, mask_input=None, *, multimask=True,
                 add_no_memory_embedding=True) -> TrackerOutput:
        b = points.shape[0]
        self.calls.append(b)
        u = points[:, 0, 0].float() * LOWRES / SIZE  # low-resolution pixel units
        v = points[:, 0, 1].float() * LOWRES / SIZE
        c = torch.arange(LOWRES, dtype=torch.float32) + 0.5
        d = ((c[None, None, :] - u[:, None, None]) ** 2 + (c[None, :, None] - v[:, None, None]) ** 2).sqrt()
        which = range(3) if multimask else (1,)
        logits = torch.stack([3.0 * (self.RADII[m] - d) for m in which], dim=1)
        if self.specks:
            logits[:, :, 1:3, LOWRES - 3:LOWRES - 1] = 30.0
            for k in range(b):
                y, x = int(v[k].clamp(1, LOWRES - 2)), int(u[k].clamp(1, LOWRES - 2))
                logits[k, -2:, y - 1:y + 1, x - 1:x + 1] = -30.0
        m = torch.tensor(list(which), dtype=torch.float32)
        h = torch.sin(u[:, None] * 12.9898 + v[:, None] * 78.233 + m[None] * 37.719) * 43758.5453
        iou = 0.5 + 0.49 * (h - h.floor())
        n = logits.shape[1]
        return TrackerOutput(mask_logits=logits.clamp(-32, 32), iou_scores=iou,
                             object_score_logit=torch.zeros(b, 1), mask_tokens=torch.zeros(b, n, 8))


@pytest.fixture
def disc_model(model, monkeypatch):
    head = DiscHead()
    monkeypatch.setattr(model.tracker_model, "predict", head)
    return model, head


# ----------------------------------------------------------------------------- SAM 1, written out
def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else [0, 0, 0, 0]


def _nms(boxes: list, scores: list, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    dead, keep = set(), []
    for a, i in enumerate(order):
        if i in dead:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            w = max(np.float32(0), min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
            h = max(np.float32(0), min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
            with np.errstate(invalid="ignore"):
                if float(np.float32(w * h) / (area[i] + area[j] - np.float32(w * h))) > thr:
                    dead.add(j)
    return keep


def sam1_reference(logits: list[np.ndarray], ious: list[np.ndarray], points: np.ndarray, o: EverythingOptions,
                   min_area: float = 0) -> list[dict]:
    """SAM 1's generator for the whole image (no crops) from each click's full-size logits (M, H, W) and IoUs:
    IoU filter (>), stability (float32 ratio, >=), threshold at 0, inclusive boxes, NMS by IoU, then with
    ``min_area`` the small-region clean-up and its NMS (unchanged masks first). ``stab_tol``: how far another
    exact count of the same upsampling may move the stability score (pixels within float32 rounding of +-offset)."""
    rows = []
    for k in range(len(points)):
        for m in range(len(ious[k])):
            iou, lg = float(ious[k][m]), logits[k][m]
            if o.pred_iou_thresh > 0 and not iou > o.pred_iou_thresh:
                continue
            off = o.stability_score_offset
            inter, union = np.float32((lg > off).sum()), np.float32((lg > -off).sum())
            with np.errstate(invalid="ignore", divide="ignore"):
                stab = float(inter / union)
            if o.stability_score_thresh > 0 and not stab >= o.stability_score_thresh:
                continue
            mask = lg > 0
            # pixels within float32 rounding of +-offset, which a count computed otherwise may take either way
            near = int((np.abs(np.abs(lg) - off) < 1e-5 * max(1.0, off)).sum())
            rows.append({"mask": mask, "box": _box(mask), "iou": iou, "stab": stab, "point": points[k].tolist(),
                         "stab_tol": near / max(1.0, float(union) - near) + 1e-6})  # + float32 ratios
    rows = [rows[i] for i in _nms([r["box"] for r in rows], [r["iou"] for r in rows], o.box_nms_thresh)]
    if min_area > 0 and rows:
        scores = []
        for r in rows:
            new, changed = clean_small_regions(r["mask"], min_area)
            scores.append(0.0 if changed else 1.0)
            r["new"], r["new_box"] = new, _box(new)
        keep = _nms([r["new_box"] for r in rows], scores, max(o.box_nms_thresh, o.crop_nms_thresh))
        rows = [dict(rows[i], mask=rows[i]["new"], box=rows[i]["new_box"]) for i in keep]
    return rows


def _assert_records_equal(records: list[dict], ref: list[dict], H: int, W: int) -> None:
    assert len(records) == len(ref)
    for rec, r in zip(records, ref):
        x0, y0, x1, y1 = r["box"]
        assert np.array_equal(rec["segmentation"], r["mask"])
        assert rec["bbox"] == [x0, y0, x1 - x0, y1 - y0] and rec["area"] == int(r["mask"].sum())
        assert rec["predicted_iou"] == r["iou"] and rec["point_coords"] == [r["point"]]
        if math.isnan(r["stab"]):
            assert math.isnan(rec["stability_score"])
        else:  # equal, but for pixels within float32 rounding of the thresholds (none at the decoder's size)
            assert abs(rec["stability_score"] - r["stab"]) <= r["stab_tol"]
        assert rec["crop_box"] == [0, 0, W, H]


def _grid_points(n: int, w: int, h: int) -> np.ndarray:
    """SAM 1's grid: ``linspace(1 / 2n, 1 - 1 / 2n, n)`` on each side, rows of x for each y, times (w, h)."""
    side = np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    return np.array([[x * w, y * h] for y in side for x in side])


def _batch_reference(predictor, n: int, o: EverythingOptions, min_area: float = 0) -> list[dict]:
    """``sam1_reference`` on ``predict_batch`` of the n x n grid (one batch): at 32 x 32 its low-resolution logits,
    post-processed as ``predict`` does (hole filling), are the full-size ones."""
    H, W = predictor.image_sizes[0]
    assert (H, W) == (LOWRES, LOWRES)
    pts = _grid_points(n, W, H)
    res = predictor.predict_batch(points=pts[:, None], multimask=o.multimask)
    opts = predictor.options
    logits = [fill_small_regions(torch.from_numpy(r.low_res_logits), max_hole_area=opts.max_hole_area,
                                 max_sprinkle_area=opts.max_sprinkle_area).numpy() for r in res]
    for r, lg in zip(res, logits):  # the upsampling is the identity at this size
        assert np.array_equal(r.masks, lg > 0)
    return sam1_reference(logits, [r.iou_scores for r in res], pts, o, min_area)


# ----------------------------------------------------------------------------- against SAM 1
@pytest.mark.parametrize("nms_thresh", [1.0, 0.7])
def test_tiny_model_equals_sam1_at_the_decoders_resolution(model, nms_thresh):
    p = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=8))
    p.set_image(_image(LOWRES, LOWRES, 1))
    o = EverythingOptions(points_per_side=8, points_per_batch=64, pred_iou_thresh=0.4, stability_score_thresh=0.05,
                          box_nms_thresh=nms_thresh)
    records = p.segment_everything(options=o)
    ref = _batch_reference(p, 8, o)
    _assert_records_equal(records, ref, LOWRES, LOWRES)
    if nms_thresh == 1.0:  # nothing suppressed: the filters alone, and the order by predicted IoU
        assert len(records) > 40
    else:  # the noise masks' boxes span the image: NMS leaves one
        assert len(records) >= 1


def test_disc_head_equals_sam1_at_the_decoders_resolution(model, disc_model):
    p = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=0))
    p.set_image(_image(LOWRES, LOWRES, 2))
    o = EverythingOptions(points_per_side=8, pred_iou_thresh=0.6, stability_score_thresh=0.3)
    records = p.segment_everything(options=o)
    ref = _batch_reference(p, 8, o)
    _assert_records_equal(records, ref, LOWRES, LOWRES)
    # NMS removed some discs repeated by neighbouring clicks, not all
    assert 10 < len(records) < len(p.segment_everything(options=o, box_nms_thresh=1.0))
    # the batch size changes nothing
    assert all(np.array_equal(a["segmentation"], b["segmentation"]) and a["predicted_iou"] == b["predicted_iou"]
               for a, b in zip(records, p.segment_everything(options=o, points_per_batch=5)))


@pytest.mark.parametrize("head, size", [("disc", (72, 96)), ("disc", (45, 70)), ("disc", (20, 28)),
                                        ("tiny", (45, 70)), ("tiny", (100, 60))])
def test_equals_sam1_at_the_image_size(model, monkeypatch, head, size):
    """At other sizes SAM 1 scores and boxes the masks upsampled to the image: ``sam1_reference`` on predict's
    upsampled logits of every click (``predict_batch``, one batch: the same numbers); segment-everything upsamples
    only what it keeps (here up- and downsampling)."""
    H, W = size
    if head == "disc":
        monkeypatch.setattr(model.tracker_model, "predict", DiscHead())
        o = EverythingOptions(points_per_side=8, pred_iou_thresh=0.6, stability_score_thresh=0.55)
    else:  # noise masks: NMS off, or it keeps one
        o = EverythingOptions(points_per_side=8, pred_iou_thresh=0.4, stability_score_thresh=0.05, box_nms_thresh=1.0)
    p = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=0 if head == "disc" else 8))
    p.set_image(_image(H, W, 8))
    records = p.segment_everything(options=o)
    pts = _grid_points(8, W, H)
    res = p.predict_batch(points=pts[:, None])
    opts = p.options
    logits = [upsample_logits(fill_small_regions(torch.from_numpy(r.low_res_logits), max_hole_area=opts.max_hole_area),
                              H, W).numpy() for r in res]
    for r, lg in zip(res, logits):
        assert np.array_equal(r.masks, lg > 0)  # what predict returns
    ref = sam1_reference(logits, [r.iou_scores for r in res], pts, o)
    assert len(ref) > 10
    _assert_records_equal(records, ref, H, W)


def test_small_regions_equal_sam1(model, monkeypatch):
    head = DiscHead(specks=True)
    monkeypatch.setattr(model.tracker_model, "predict", head)
    p = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=0))
    p.set_image(_image(LOWRES, LOWRES, 3))
    o = EverythingOptions(points_per_side=6, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.9,
                          min_mask_region_area=5)
    records = p.segment_everything(options=o)
    ref = _batch_reference(p, 6, o, min_area=5)
    _assert_records_equal(records, ref, LOWRES, LOWRES)
    assert all(not clean_small_regions(r["segmentation"], 5)[1] for r in records)  # nothing small is left
    raw = p.segment_everything(options=o, min_mask_region_area=0)
    assert any(clean_small_regions(r["segmentation"], 5)[1] for r in raw)  # there was something to clean


# ----------------------------------------------------------------------------- invariants at other sizes
def _iou(a: list, b: list) -> float:
    """IoU of two xywh records' boxes as NMS computes it (inclusive xyxy, areas (x1 - x0) * (y1 - y0))."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0, min(ay1, by1) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - w * h
    return w * h / union if union > 0 else 0.0


def _match(records_iou: float, ious: np.ndarray) -> int:
    """The candidate mask of ``predict`` behind a record: the one with its predicted IoU (unambiguous)."""
    d = np.abs(ious - records_iou)
    j = int(np.argmin(d))
    assert d[j] <= 1e-6 and np.sort(d)[1] > 1e-4
    return j


def test_every_mask_is_predict_on_its_click(model):
    p = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=8))
    img = _image(45, 70, 4)
    records = p.segment_everything(img, points_per_side=6, points_per_batch=16, pred_iou_thresh=0.4,
                                   stability_score_thresh=0.05, box_nms_thresh=1.0)
    assert len(records) > 20
    for rec in records:
        r = p.predict(points=rec["point_coords"])
        j = _match(rec["predicted_iou"], r.iou_scores)
        # batched and single decoder calls round differently (~1e-7): pixels whose logit is that close to the
        # threshold may differ, no other
        logit = upsample_logits(torch.from_numpy(r.low_res_logits[j:j + 1]), 45, 70)[0].numpy()
        differ = rec["segmentation"] != r.masks[j]
        assert np.all(np.abs(logit[differ]) < 1e-5)
        assert rec["area"] == int(rec["segmentation"].sum())
        ys, xs = np.nonzero(rec["segmentation"])
        assert rec["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
    ious = [r["predicted_iou"] for r in records]
    assert ious == sorted(ious, reverse=True)


def test_disc_head_invariants_with_crops(model, disc_model, monkeypatch):
    _, head = disc_model
    p = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=0))
    img = _image(72, 96, 5)
    calls = []
    hook = model.image_trunk_module().register_forward_hook(lambda m, a, out: calls.append(out.shape[0]))
    try:
        p.set_image(img)
        assert calls == [1]
        o = EverythingOptions(points_per_side=8, points_per_batch=24, pred_iou_thresh=0.6, stability_score_thresh=0.3,
                              crop_n_layers=1, box_nms_thresh=0.7, crop_nms_thresh=0.5)
        head.calls.clear()
        records = p.segment_everything(img, options=o)
    finally:
        hook.remove()
    assert calls == [1, 4]  # the whole image from the cache; the four crops of layer 1 once, together
    assert head.calls == [24, 24, 16] * 5  # 64 clicks per crop in batches of 24, five crops
    crops, _ = crop_boxes(72, 96, 1, o.crop_overlap_ratio)
    xywh = [[c[0], c[1], c[2] - c[0], c[3] - c[1]] for c in crops]
    assert all(r["crop_box"] in xywh for r in records)
    assert {tuple(r["crop_box"]) for r in records} >= {tuple(xywh[0]), tuple(xywh[1])}
    # SAM 1's order: smaller crops first (all four crops of layer 1 are 60 x 48 here), then the crops in order,
    # predicted IoU decreasing within a crop
    key = [(r["crop_box"][2] * r["crop_box"][3], xywh.index(r["crop_box"]), -r["predicted_iou"]) for r in records]
    assert key == sorted(key)
    for i, a in enumerate(records):
        for b in records[i + 1:]:
            thr = o.box_nms_thresh if a["crop_box"] == b["crop_box"] else o.crop_nms_thresh
            assert _iou(a["bbox"], b["bbox"]) <= thr
    # each mask is predict on its click, on the crop it was found on (the disc head rounds alike in any batch)
    q = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=0))
    for crop in xywh:
        x, y, w, h = crop
        q.set_image(img[y:y + h, x:x + w])
        for rec in (r for r in records if r["crop_box"] == crop):
            (px, py), = rec["point_coords"]
            r = q.predict(points=[[px - x, py - y]])
            j = _match(rec["predicted_iou"], r.iou_scores)
            full = np.zeros((72, 96), bool)
            full[y:y + h, x:x + w] = r.masks[j]
            assert np.array_equal(rec["segmentation"], full)


def test_output_mode_multimask_and_options(model, disc_model):
    p = sam3kit.ImagePredictor(model, options=sam3kit.PredictOptions(max_hole_area=0))
    img = _image(50, 40, 6)
    o = EverythingOptions(points_per_side=5, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    binary = p.segment_everything(img, options=o)
    rle = p.segment_everything(options=o, output_mode="coco_rle")
    assert len(binary) == len(rle) > 0
    for a, b in zip(binary, rle):
        assert b["segmentation"]["size"] == [50, 40] and isinstance(b["segmentation"]["counts"], str)
        assert np.array_equal(decode_rle(b["segmentation"]), a["segmentation"])
        assert [v for k, v in a.items() if k != "segmentation"] == [v for k, v in b.items() if k != "segmentation"]
    single = p.segment_everything(options=o, multimask=False)
    for rec in single:
        r = p.predict(points=rec["point_coords"], multimask=False)
        assert np.array_equal(rec["segmentation"], r.masks[0]) and rec["predicted_iou"] == float(r.iou_scores[0])
    # keywords override the options; the options object is frozen and exported
    assert sam3kit.EverythingOptions is EverythingOptions
    with pytest.raises(FrozenInstanceError):
        o.points_per_side = 3
    assert len(p.segment_everything(options=o, points_per_side=1)) <= 3


def test_crops_of_a_tiny_image(model, disc_model):
    """A 5 x 5 image has empty crops at layer 3 (8 per side): they are skipped, the others run."""
    p = sam3kit.ImagePredictor(model)
    records = p.segment_everything(_image(5, 5), crop_n_layers=3, points_per_side=2, pred_iou_thresh=0.0,
                                   stability_score_thresh=0.0)
    crops, _ = crop_boxes(5, 5, 3, 512 / 1500)
    assert records and all(r["crop_box"][2] > 0 and r["crop_box"][3] > 0 for r in records)
    assert any(c[2] <= c[0] for c in crops)


def test_encoding_is_reused(model, disc_model):
    calls = []
    hook = model.image_trunk_module().register_forward_hook(lambda *a: calls.append(1))
    try:
        p = sam3kit.ImagePredictor(model)
        p.set_image(_image(40, 40, 7))
        p.segment_everything(points_per_side=4)
        p.predict(points=[[10, 10]])
        p.segment_everything(points_per_side=3, pred_iou_thresh=0.0)
    finally:
        hook.remove()
    assert calls == [1]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, words", [
    ({"points_per_side": 0}, "points_per_side must be in [1, 128]"),
    ({"points_per_side": MAX_POINTS_PER_SIDE + 1}, "points_per_side must be in [1, 128]"),
    ({"points_per_side": 2.5}, "points_per_side must be an integer"),
    ({"points_per_side": True}, "points_per_side must be an integer"),
    ({"points_per_batch": 0}, "points_per_batch must be in [1, 1024]"),
    ({"pred_iou_thresh": 1.5}, "pred_iou_thresh must be in [0, 1]"),
    ({"stability_score_thresh": -0.1}, "stability_score_thresh must be in [0, 1]"),
    ({"box_nms_thresh": float("nan")}, "box_nms_thresh must be in [0, 1]"),
    ({"crop_nms_thresh": 2}, "crop_nms_thresh must be in [0, 1]"),
    ({"pred_iou_thresh": "high"}, "pred_iou_thresh must be a number in [0, 1]"),
    ({"stability_score_offset": -1}, "stability_score_offset must be >= 0"),
    ({"crop_overlap_ratio": 1.0}, "crop_overlap_ratio must be in [0, 1)"),
    ({"crop_n_layers": 4}, "crop_n_layers must be in [0, 3]"),
    ({"crop_n_layers": 2, "points_per_side": 3, "crop_n_points_downscale_factor": 2}, "crop layer 2 would get no"),
    ({"min_mask_region_area": float("inf")}, "min_mask_region_area must be finite"),
    ({"multimask": 1}, "multimask must be True or False"),
    ({"output_mode": "png"}, "output_mode must be one of 'binary_mask', 'coco_rle'"),
])
def test_bad_options(model, kw, words):
    with pytest.raises(InputError) as e:
        EverythingOptions(**kw)
    assert words in str(e.value)
    p = sam3kit.ImagePredictor(model)
    p.set_image(_image(20, 20))
    with pytest.raises(InputError):
        p.segment_everything(**kw)


def test_bad_calls(model):
    p = sam3kit.ImagePredictor(model)
    with pytest.raises(InputError, match="no image is set"):
        p.segment_everything()
    p.set_image(_image(20, 20))
    with pytest.raises(InputError, match="needs its pixels"):
        p.segment_everything(crop_n_layers=1)
    with pytest.raises(InputError, match="options must be an EverythingOptions"):
        p.segment_everything(options=sam3kit.SegmentOptions())
    p.set_images([_image(20, 20), _image(30, 20)])
    with pytest.raises(InputError, match="a batch of 2 images"):
        p.segment_everything()
    detector_only = randomize_(Sam3Model(Sam3Config.tiny(with_tracker=False)).eval(), seed=1)
    q = sam3kit.ImagePredictor(detector_only)
    with pytest.raises(InputError, match="tracker"):
        q.segment_everything(_image(20, 20))
