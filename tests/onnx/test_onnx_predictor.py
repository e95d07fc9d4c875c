"""``OnnxPredictor`` end to end against ``ImagePredictor`` (the default-loaded model, CPU speed swaps on), and its
numpy pre- and post-processing against the torch code it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam3kit.onnx import OnnxPredictor
from sam3kit.onnx.components import component_areas, fill_small_regions
from sam3kit.onnx.postprocess import sigmoid, upsample_logits
from sam3kit.onnx.preprocess import pixel_values, resize_uint8
from sam3kit.pipelines.image import ImagePredictor
from sam3kit.pipelines.options import PredictOptions, SegmentOptions
from sam3kit.pipelines.results import PredictResult, SegmentResult

LOGIT_TOL = 1e-4  # graph outputs: float32 rounding of two implementations
MARGIN = 1e-3  # "away from the threshold": mask pixels whose logit is further than this from it must agree


@pytest.fixture(scope="module")
def pair(export_dir, default_model, image):
    onnx_p, torch_p = OnnxPredictor(export_dir), ImagePredictor(default_model)
    onnx_p.set_image(image)
    torch_p.set_image(image)
    return onnx_p, torch_p


def _threshold_between(scores: np.ndarray) -> float:
    """A threshold in the widest gap between the sorted scores, so that no score lies within 1e-4 of it (the
    scores of the two predictors agree within 1e-4, so they keep the same instances)."""
    s = np.sort(scores)
    i = int(np.argmax(np.diff(s)))
    assert s[i + 1] - s[i] > 2 * LOGIT_TOL
    return float((s[i] + s[i + 1]) / 2)


@pytest.mark.parametrize("prompt", [dict(text="a dog"), dict(text="a dog", boxes=[[10, 10, 60, 50]]),
                                    dict(boxes=[[10, 10, 60, 50], [20, 30, 120, 85]], box_labels=[1, 0])])
def test_segment_matches_image_predictor(pair, prompt):
    onnx_p, torch_p = pair
    every = torch_p.segment(threshold=0.0, **prompt).scores
    threshold = _threshold_between(every)
    a = onnx_p.segment(threshold=threshold, return_mask_logits=True, return_semantic=True, **prompt)
    b = torch_p.segment(threshold=threshold, return_mask_logits=True, return_semantic=True, **prompt)
    assert isinstance(a, SegmentResult) and 0 < len(b) < len(every)
    assert np.array_equal(a.query_indices, b.query_indices)  # the same kept instances, in the same order
    assert a.masks.dtype == b.masks.dtype == bool and a.masks.shape == b.masks.shape == (len(b), 90, 130)
    assert np.abs(a.scores - b.scores).max() <= LOGIT_TOL and abs(a.presence - b.presence) <= LOGIT_TOL
    assert np.abs(a.boxes - b.boxes).max() <= 130 * LOGIT_TOL  # pixels: normalised boxes times the width
    assert np.abs(a.mask_logits - b.mask_logits).max() <= LOGIT_TOL
    assert np.abs(a.semantic_logits - b.semantic_logits).max() <= LOGIT_TOL
    away = np.abs(b.mask_logits) > MARGIN  # mask_threshold 0.5 = logit 0
    assert np.array_equal(a.masks[away], b.masks[away]) and away.mean() > 0.5  # (random weights: small logits)
    for field in ("scores", "boxes", "query_indices"):
        assert getattr(a, field).dtype == getattr(b, field).dtype, field


def test_segment_options_and_text_cut(pair):
    onnx_p, torch_p = pair
    opts = SegmentOptions(threshold=0.0, mask_threshold=0.7)
    a, b = onnx_p.segment("a dog", options=opts), torch_p.segment("a dog", options=opts)
    assert np.array_equal(a.query_indices, b.query_indices) and a.mask_logits is None
    long = " ".join(["dog"] * 40)
    with pytest.raises(Exception, match="tokens long"):
        onnx_p.segment(long)
    a, b = onnx_p.segment(long, threshold=0.0, truncate_text=True), torch_p.segment(long, threshold=0.0,
                                                                                    truncate_text=True)
    assert np.abs(a.scores - b.scores).max() <= LOGIT_TOL


def _predict_agree(a: PredictResult, b: PredictResult, options: PredictOptions) -> None:
    assert isinstance(a, PredictResult)
    assert a.masks.shape == b.masks.shape and a.best == b.best
    assert np.abs(a.low_res_logits - b.low_res_logits).max() <= LOGIT_TOL
    assert np.abs(a.iou_scores - b.iou_scores).max() <= LOGIT_TOL and abs(a.object_score - b.object_score) <= 1e-5
    # the full-size logits ImagePredictor thresholds (its own low-resolution logits, filled and upsampled)
    up = upsample_logits(fill_small_regions(b.low_res_logits, max_hole_area=options.max_hole_area,
                                            max_sprinkle_area=options.max_sprinkle_area), *b.masks.shape[1:])
    away = np.abs(up) > MARGIN
    assert np.array_equal(a.masks[away], b.masks[away]) and away.mean() > 0.5  # (random weights: small logits)


@pytest.mark.parametrize("prompt", [dict(points=[[30, 40]]), dict(points=[[30, 40], [80, 60]], point_labels=[1, 0]),
                                    dict(box=[10, 10, 60, 50]), dict(points=[[30, 40]], box=[[10, 10, 60, 50]]),
                                    dict(points=[[100, 20]], multimask=False)])
def test_predict_matches_image_predictor(pair, prompt):
    onnx_p, torch_p = pair
    a, b = onnx_p.predict(**prompt), torch_p.predict(**prompt)
    _predict_agree(a, b, PredictOptions())
    again = dict(mask_input=b.low_res_logits[b.best], points=prompt.get("points"))
    _predict_agree(onnx_p.predict(**again), torch_p.predict(**again), PredictOptions())


def test_predict_options(export_dir, default_model, image):
    opts = PredictOptions(max_hole_area=0.0, max_sprinkle_area=40.0)
    onnx_p, torch_p = OnnxPredictor(export_dir, options=opts), ImagePredictor(default_model, options=opts)
    onnx_p.set_image(image)
    torch_p.set_image(image)
    _predict_agree(onnx_p.predict(points=[[60, 45]]), torch_p.predict(points=[[60, 45]]), opts)


def test_batches_match_image_predictor(export_dir, default_model, image):
    """``set_images`` + ``segment_batch`` / ``predict_batch`` / ``predict(image_index=)``: the batch axes of the
    graphs against ``ImagePredictor``'s batches, and against one image at a time."""
    images = [image, np.ascontiguousarray(image[:, 10:90].transpose(1, 0, 2)[::-1])]  # 80 x 90: another size
    onnx_p, torch_p, single = OnnxPredictor(export_dir), ImagePredictor(default_model), OnnxPredictor(export_dir)
    onnx_p.set_images(images)
    torch_p.set_images(images)
    assert onnx_p.image_sizes == torch_p.image_sizes == [(90, 130), (80, 90)]
    prompt = dict(text="a dog", boxes=[[10, 10, 60, 50]])
    every = torch_p.segment_batch(threshold=0.0, **prompt)
    threshold = _threshold_between(np.concatenate([r.scores for r in every]))
    a = onnx_p.segment_batch(threshold=threshold, return_mask_logits=True, **prompt)
    b = torch_p.segment_batch(threshold=threshold, return_mask_logits=True, **prompt)
    assert len(a) == len(b) == 2 and sum(len(r) for r in b) > 0
    for i, (x, y) in enumerate(zip(a, b)):
        single.set_image(images[i])
        z = single.segment(threshold=threshold, return_mask_logits=True, **prompt)
        for other in (y, z):
            assert np.array_equal(x.query_indices, other.query_indices)
            assert np.abs(x.scores - other.scores).max(initial=0) <= LOGIT_TOL
            assert np.abs(x.boxes - other.boxes).max(initial=0) <= 130 * LOGIT_TOL
            assert np.abs(x.mask_logits - other.mask_logits).max(initial=0) <= LOGIT_TOL
    objects = dict(points=[[[30, 40], [50, 20]], [[10, 70], [60, 75]]], point_labels=[[1, 0], [1, 1]],
                   box=[[5, 5, 70, 80], [20, 30, 60, 78]])
    a, b = onnx_p.predict_batch(image_index=1, **objects), torch_p.predict_batch(image_index=1, **objects)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        _predict_agree(x, y, PredictOptions())
    single.set_image(images[1])
    one = single.predict(points=objects["points"][1], point_labels=objects["point_labels"][1], box=objects["box"][1])
    _predict_agree(a[1], torch_p.predict(image_index=1, points=objects["points"][1],
                                         point_labels=objects["point_labels"][1], box=objects["box"][1]),
                   PredictOptions())
    assert np.abs(one.low_res_logits - a[1].low_res_logits).max() <= LOGIT_TOL
    masks = np.stack([r.low_res_logits[r.best] for r in b])  # mask prompts only, for K objects
    for x, y in zip(onnx_p.predict_batch(mask_input=masks, multimask=False),
                    torch_p.predict_batch(mask_input=masks, multimask=False)):
        _predict_agree(x, y, PredictOptions())


def test_batch_errors(export_dir, image):
    from sam3kit.errors import InputError

    p = OnnxPredictor(export_dir)
    for bad, match in [(image, "takes a list of images"), ([], "empty list")]:
        with pytest.raises(InputError, match=match):
            p.set_images(bad)
    with pytest.raises(InputError, match="use set_images"):
        p.set_image([image, image])
    p.set_images([image, image])
    with pytest.raises(InputError, match="use segment_batch"):
        p.segment("a dog")
    with pytest.raises(InputError, match="out of range for a batch of 2"):
        p.predict(points=[[3, 4]], image_index=2)
    with pytest.raises(InputError, match="one entry per object"):
        p.predict_batch(points=[[[3, 4]], [[5, 6]]], box=[[1, 1, 9, 9]])
    with pytest.raises(InputError, match=r"shape \(K, N, 2\)"):  # ragged: objects with unequal point counts
        p.predict_batch(points=[[[3, 4]], [[5, 6], [7, 8]]])
    with pytest.raises(InputError, match="use predict_batch"):
        p.predict(points=[[[3, 4]], [[5, 6]]])


# ---------------------------------------------------------------------- the numpy pieces
def test_resize_is_torchs_uint8_kernel():
    from sam3kit.pipelines.preprocess import _resize_uint8, preprocess

    rng = np.random.default_rng(0)
    for h, w, s in [(90, 130, 112), (300, 200, 112), (37, 53, 112), (113, 111, 112), (112, 112, 112),
                    (1500, 1200, 1008), (480, 640, 1008), (7, 1000, 112)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        want = _resize_uint8(torch.from_numpy(img).permute(2, 0, 1)[None], s)[0].permute(1, 2, 0).numpy()
        assert np.array_equal(resize_uint8(img, s), want), (h, w, s)
    img = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    want = preprocess([img], 112, device=torch.device("cpu"), dtype=torch.float32).numpy()
    assert np.array_equal(pixel_values([img], 112), want)


def test_upsampling_and_sigmoid_match_torch():
    from sam3kit.pipelines.postprocess import upsample_logits as torch_upsample

    rng = np.random.default_rng(1)
    x = (rng.normal(size=(3, 32, 32)) * 10).astype(np.float32)
    for h, w in [(90, 130), (32, 32), (17, 500), (1000, 20)]:
        want = torch_upsample(torch.from_numpy(x), h, w).numpy()
        # torch's float32 weights err by up to ~1e-6 of the largest value (against float64); these by less
        assert np.abs(upsample_logits(x, h, w) - want).max() <= 4e-6 * np.abs(x).max(), (h, w)
    assert upsample_logits(x[:0], 5, 6).shape == (0, 5, 6)
    z = np.array([-100, -3, 0, 2.5, 100], dtype=np.float32)
    assert np.abs(sigmoid(z) - torch.from_numpy(z).sigmoid().numpy()).max() <= 1e-7


def test_components_match_scipy():
    from sam3kit.ops.components import component_areas as scipy_areas
    from sam3kit.ops.components import fill_small_regions as torch_fill

    rng = np.random.default_rng(2)
    for trial in range(20):
        n, h, w = rng.integers(1, 4), rng.integers(1, 50), rng.integers(1, 50)
        binary = rng.random((n, h, w)) < rng.uniform(0.2, 0.8)
        assert np.array_equal(component_areas(binary), scipy_areas(torch.from_numpy(binary)).numpy()), trial
    spiral = np.zeros((1, 41, 41), dtype=bool)  # one long component: many merges along a path
    for i in range(0, 20, 2):
        spiral[0, i, i:41 - i] = spiral[0, 40 - i, i:41 - i] = True
        spiral[0, i:41 - i, i] = spiral[0, i + 2:41 - i, 40 - i] = True
    assert np.array_equal(component_areas(spiral), scipy_areas(torch.from_numpy(spiral)).numpy())
    logits = (rng.normal(size=(3, 64, 64)) * 3).astype(np.float32)
    for holes, sprinkles in [(256, 0), (0, 30), (10, 5)]:
        want = torch_fill(torch.from_numpy(logits), max_hole_area=holes, max_sprinkle_area=sprinkles).numpy()
        assert np.array_equal(fill_small_regions(logits, max_hole_area=holes, max_sprinkle_area=sprinkles), want)


def test_predictor_state(export_dir, image):
    p = OnnxPredictor(export_dir)
    assert not p.is_image_set and p.image_sizes == []
    p.set_image(image)
    assert p.is_image_set and p.image_sizes == [(90, 130)]
    p.reset_image()
    assert not p.is_image_set
    assert sorted(p._sessions) == ["vision_encoder"]  # sessions open on first use
