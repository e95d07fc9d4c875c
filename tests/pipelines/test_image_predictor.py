"""ImagePredictor behaviour: one backbone pass for both tasks, batches equal single calls, every bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.errors import InputError
from sam3kit.model.sam3 import Sam3Model
from sam3kit.tokenizer import Sam3Tokenizer

from fixtures.tokenizer_files import write_sam3_tokenizer_files
from fixtures.weights import randomize_


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return Sam3Tokenizer.from_dir(write_sam3_tokenizer_files(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def model():
    return randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=11)


def _img(seed, h=45, w=70):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def predictor(model, tokenizer):
    p = sam3kit.ImagePredictor(model, tokenizer=tokenizer)
    p.set_image(_img(0))
    return p


def test_one_backbone_pass_serves_both_tasks(model, tokenizer):
    calls = []
    h = model.image_trunk_module().register_forward_hook(lambda *a: calls.append(1))
    try:
        p = sam3kit.ImagePredictor(model, tokenizer=tokenizer)
        p.set_image(_img(1))
        p.segment(text="a cat", threshold=0.0)
        p.predict(points=[[10, 20]])
        p.segment(boxes=[[5, 5, 30, 30]], threshold=0.0)
        p.predict(box=[5, 5, 30, 30])
    finally:
        h.remove()
    assert len(calls) == 1


def test_segment_result_shapes(predictor):
    r = predictor.segment(text="a cat", threshold=0.0, return_mask_logits=True, return_semantic=True)
    n = len(r)
    assert n == 10  # threshold 0 keeps every query of the tiny model
    assert r.masks.shape == (n, 45, 70) and r.masks.dtype == bool
    assert r.boxes.shape == (n, 4) and r.scores.shape == (n,) and 0 <= r.presence <= 1
    assert r.mask_logits.shape == (n, 45, 70) and r.semantic_logits.shape == (45, 70)
    assert np.array_equal(r.masks, 1 / (1 + np.exp(-r.mask_logits)) > 0.5)
    assert np.all(np.diff(r.query_indices) > 0)
    assert len(predictor.segment(text="a cat", threshold=1.0)) == 0


def test_batch_of_images_equals_single_images(model, tokenizer):
    imgs = [_img(2, 45, 70), _img(3, 80, 30)]
    p = sam3kit.ImagePredictor(model, tokenizer=tokenizer)
    p.set_images(imgs)
    batch = p.segment_batch(text="a dog", boxes=[[2, 2, 20, 25]], box_labels=[1], threshold=0.0,
                            return_mask_logits=True)
    assert isinstance(batch, list) and len(batch) == 2
    for img, rb in zip(imgs, batch):
        p.set_image(img)
        rs = p.segment(text="a dog", boxes=[[2, 2, 20, 25]], box_labels=[1], threshold=0.0, return_mask_logits=True)
        assert rb.masks.shape == rs.masks.shape
        np.testing.assert_allclose(rb.scores, rs.scores, atol=1e-5)
        np.testing.assert_allclose(rb.boxes, rs.boxes, atol=1e-3)
        np.testing.assert_allclose(rb.mask_logits, rs.mask_logits, atol=1e-4)


def test_batched_prompts_equal_single_prompts(predictor):
    pts = [[[10, 12], [40, 30]], [[60, 40], [5, 5]]]
    labels = [[1, 0], [1, 1]]
    batch = predictor.predict_batch(points=pts, point_labels=labels)
    assert isinstance(batch, list) and len(batch) == 2
    for k in range(2):
        single = predictor.predict(points=pts[k], point_labels=labels[k])
        np.testing.assert_allclose(batch[k].low_res_logits, single.low_res_logits, atol=1e-5)
        np.testing.assert_allclose(batch[k].iou_scores, single.iou_scores, atol=1e-6)
    boxes = predictor.predict_batch(box=[[1, 2, 30, 40], [20, 10, 60, 44]])
    assert len(boxes) == 2 and boxes[0].masks.shape == (3, 45, 70)
    for k, b in enumerate([[1, 2, 30, 40], [20, 10, 60, 44]]):
        np.testing.assert_allclose(boxes[k].low_res_logits, predictor.predict(box=b).low_res_logits, atol=1e-5)
    masks = predictor.predict_batch(mask_input=np.stack([batch[0].low_res_logits[0], batch[1].low_res_logits[1]]))
    assert len(masks) == 2
    np.testing.assert_allclose(masks[1].low_res_logits,
                               predictor.predict(mask_input=batch[1].low_res_logits[1]).low_res_logits, atol=1e-5)


def test_predict_result(predictor):
    r = predictor.predict(points=[[10, 12]], multimask=True)
    assert r.masks.shape == (3, 45, 70) and r.iou_scores.shape == (3,)
    assert r.best == int(np.argmax(r.iou_scores)) and r.best_mask.shape == (45, 70)
    assert r.low_res_logits.shape == (3, 32, 32) and 0 <= r.object_score <= 1
    one = predictor.predict(points=[[10, 12]], multimask=False)
    assert one.masks.shape == (1, 45, 70)
    refined = predictor.predict(points=[[10, 12]], mask_input=r.low_res_logits[r.best])
    assert refined.masks.shape == (3, 45, 70)
    assert not np.allclose(refined.low_res_logits, r.low_res_logits)
    assert predictor.predict(mask_input=r.low_res_logits[r.best]).masks.shape == (3, 45, 70)


@pytest.mark.parametrize("kwargs, match", [
    ({}, "needs a text prompt, exemplar boxes, or both"),
    ({"text": ""}, "empty"),
    ({"text": "   "}, "empty"),
    ({"text": 5}, "must be a string"),
    ({"text": " ".join(["word"] * 40)}, "longer|context|tokens"),
    ({"boxes": [[10, 10, 5, 20]]}, "inverted"),
    ({"boxes": [[10, 10, 10, 20]]}, "degenerate"),
    ({"boxes": [[0, 0, 80, 20]]}, "outside"),
    ({"boxes": [[0, 0, float("nan"), 20]]}, "NaN"),
    ({"boxes": [[0, 0, 20]]}, r"shape \(N, 4\)"),
    ({"boxes": [[0, 0, 20, 20]], "box_labels": [2]}, "1 .*or 0"),
    ({"boxes": [[0, 0, 20, 20]], "box_labels": [1, 0]}, "one label per prompt"),
    ({"text": "a", "box_labels": [1]}, "without boxes"),
    ({"text": "a", "threshold": 2}, r"\[0, 1\]"),
])
def test_segment_refuses_bad_input(predictor, kwargs, match):
    with pytest.raises(InputError, match=match):
        predictor.segment(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({}, "at least one prompt"),
    ({"points": [[100, 10]]}, "outside"),
    ({"points": [[-1, 10]]}, "outside"),
    ({"points": [[10, 10]], "point_labels": [3]}, "1 .*or 0"),
    ({"points": [[10, 10], [20, 20]], "point_labels": [1]}, "one label per prompt"),
    ({"points": [[10, 10, 3]]}, r"shape \(N, 2\)"),
    ({"point_labels": [1]}, "at least one prompt"),
    ({"box": [30, 10, 5, 20]}, "inverted"),
    ({"box": [[30, 10, 5, 20]]}, "inverted"),
    ({"mask_input": np.zeros((64, 64))}, r"\(32, 32\) low-resolution"),
    ({"points": [[10, 10]], "image_index": 3}, "out of range"),
])
def test_predict_refuses_bad_input(predictor, kwargs, match):
    with pytest.raises(InputError, match=match):
        predictor.predict(**kwargs)


def test_calls_before_set_image(model, tokenizer):
    p = sam3kit.ImagePredictor(model, tokenizer=tokenizer)
    with pytest.raises(InputError, match="set_image"):
        p.segment(text="a")
    with pytest.raises(InputError, match="set_image"):
        p.predict(points=[[1, 1]])
    with pytest.raises(InputError, match="empty list"):
        p.set_images([])


def test_detector_only_model_refuses_predict(tokenizer):
    m = randomize_(Sam3Model(Sam3Config.tiny(with_tracker=False)).eval(), seed=2)
    p = sam3kit.ImagePredictor(m, tokenizer=tokenizer)
    p.set_image(_img(0))
    assert len(p.segment(text="a cat", threshold=0.0)) == 10
    with pytest.raises(InputError, match="detector-only"):
        p.predict(points=[[1, 1]])


def test_model_without_tokenizer_uses_the_bundled_vocabulary(model, tokenizer):
    p = sam3kit.ImagePredictor(model)
    p.set_image(_img(0))
    q = sam3kit.ImagePredictor(model, tokenizer=tokenizer)
    q.set_image(_img(0))
    a, b = p.segment(text="a cat", threshold=0.0), q.segment(text="a cat", threshold=0.0)
    np.testing.assert_array_equal(a.scores, b.scores)


# ---------------------------------------------------------------------- one result type per call
def test_single_calls_return_one_result(predictor):
    assert isinstance(predictor.segment(text="a cat", threshold=0.0), sam3kit.SegmentResult)
    assert isinstance(predictor.predict(points=[[10, 12]]), sam3kit.PredictResult)
    one_box = predictor.predict(box=[[1, 2, 30, 40]])  # (1, 4): one object
    assert isinstance(one_box, sam3kit.PredictResult)
    np.testing.assert_array_equal(one_box.low_res_logits, predictor.predict(box=[1, 2, 30, 40]).low_res_logits)
    r = predictor.predict(points=[[10, 12]])
    with_lead = predictor.predict(points=[[10, 12]], mask_input=r.low_res_logits[None, 0])  # (1, h, w)
    np.testing.assert_array_equal(with_lead.low_res_logits,
                                  predictor.predict(points=[[10, 12]], mask_input=r.low_res_logits[0]).low_res_logits)
    # segment_batch on a single image: a list of one, equal to segment
    [b] = predictor.segment_batch(text="a cat", threshold=0.0)
    np.testing.assert_array_equal(b.scores, predictor.segment(text="a cat", threshold=0.0).scores)


def test_batch_calls_are_named_in_the_errors(model, tokenizer, predictor):
    with pytest.raises(InputError, match="set_images"):
        predictor.set_image([_img(0), _img(1)])
    with pytest.raises(InputError, match="set_image"):
        predictor.set_images(_img(0))
    with pytest.raises(InputError, match="predict_batch"):
        predictor.predict(points=[[[10, 12]], [[20, 20]]])
    with pytest.raises(InputError, match="predict_batch"):
        predictor.predict(box=[[1, 2, 30, 40], [20, 10, 60, 44]])
    with pytest.raises(InputError, match="predict_batch"):
        predictor.predict(mask_input=np.zeros((2, 32, 32)))
    p = sam3kit.ImagePredictor(model, tokenizer=tokenizer)
    p.set_images([_img(0), _img(1)])
    with pytest.raises(InputError, match="segment_batch"):
        p.segment(text="a cat")
    assert p.predict(points=[[5, 5]], image_index=1).masks.shape[1:] == (45, 70)


@pytest.mark.parametrize("kwargs, match", [
    ({}, "at least one prompt"),
    ({"points": [[10, 12], [20, 20]]}, r"\(K, N, 2\).*use predict"),
    ({"box": [1, 2, 30, 40]}, r"\(K, 4\)"),
    ({"mask_input": np.zeros((32, 32))}, r"\(K, 4g, 4g\)"),
    ({"points": [[[10, 12]], [[20, 20]]], "box": [[1, 2, 30, 40]]}, "one entry per object"),
    ({"points": [[[10, 12]], [[20, 20]]], "point_labels": [1, 1]}, r"\(K, N\)"),
    ({"points": [[[10, 12]], [[20, 20], [1, 1]]]}, r"\(K, N, 2\)"),
    ({"points": np.zeros((0, 1, 2))}, "zero objects"),
    ({"points": [[[10, 12]], [[200, 20]]]}, r"points\[1\]\[0\].*outside"),
    ({"box": [[1, 2, 30, 40], [20, 10, 5, 44]]}, r"box\[1\].*inverted"),
])
def test_predict_batch_refuses_bad_input(predictor, kwargs, match):
    with pytest.raises(InputError, match=match):
        predictor.predict_batch(**kwargs)


def test_segment_options(predictor):
    opts = sam3kit.SegmentOptions(threshold=0.0, return_mask_logits=True)
    a = predictor.segment(text="a cat", options=opts)
    b = predictor.segment(text="a cat", threshold=0.0, return_mask_logits=True)
    assert len(a) == len(b) == 10 and a.mask_logits is not None
    np.testing.assert_array_equal(a.mask_logits, b.mask_logits)
    # a keyword overrides the field of options
    assert len(predictor.segment(text="a cat", options=opts, threshold=1.0)) == 0
    assert predictor.segment(text="a cat", options=opts, return_mask_logits=False).mask_logits is None
    with pytest.raises(InputError, match=r"threshold must be in \[0, 1\]"):
        sam3kit.SegmentOptions(threshold=1.5)
    with pytest.raises(InputError, match="mask_threshold"):
        sam3kit.SegmentOptions(mask_threshold="high")
    with pytest.raises(InputError, match="return_semantic"):
        sam3kit.SegmentOptions(return_semantic="yes")
    with pytest.raises(InputError, match="SegmentOptions"):
        predictor.segment(text="a cat", options={"threshold": 0.0})
    with pytest.raises(AttributeError):
        opts.threshold = 0.3  # frozen


def test_encoder_and_state_can_be_shared(model, tokenizer):
    enc = sam3kit.ImageEncoder(model)
    p = sam3kit.ImagePredictor(model, tokenizer=tokenizer, encoder=enc)
    q = sam3kit.ImagePredictor(model, tokenizer=tokenizer, encoder=enc)
    assert p.cache is q.cache is enc.cache
    p.set_image(_img(4))
    q.set_state(p.state)
    a, b = p.segment(text="a cat", threshold=0.0), q.segment(text="a cat", threshold=0.0)
    np.testing.assert_array_equal(a.scores, b.scores)
    with pytest.raises(InputError, match="either encoder="):
        sam3kit.ImagePredictor(model, encoder=enc, cache=sam3kit.EncodingCache())
    with pytest.raises(InputError, match="either encoder="):
        sam3kit.ImagePredictor(model, encoder=enc, encoder_options=sam3kit.EncoderOptions())
    other = randomize_(Sam3Model(Sam3Config.tiny()).eval(), seed=12)
    with pytest.raises(InputError, match="another model"):
        sam3kit.ImagePredictor(other, encoder=enc)
    with pytest.raises(InputError, match="another model"):
        sam3kit.ImagePredictor(other).set_state(p.state)
    with pytest.raises(InputError, match="ImageState"):
        q.set_state(_img(0))
    with pytest.raises(InputError, match="PredictOptions"):
        sam3kit.ImagePredictor(model, options=sam3kit.EncoderOptions())


def test_failed_decoding_keeps_the_previous_image(predictor):
    before = predictor.state
    with pytest.raises(sam3kit.ImageError):
        predictor.set_image("/nonexistent/image.png")
    assert predictor.state is before


def test_segment_keeps_the_query_order(predictor):
    """Defect 3 (API side): instances in the detector's query order, not sorted by score; the CLI numbers its
    mask files in this order."""
    r = predictor.segment(text="a cat", threshold=0.0)
    assert np.all(np.diff(r.query_indices) > 0) and r.query_indices.tolist() == list(range(len(r)))
    some = predictor.segment(text="a cat", threshold=float(np.median(r.scores)))
    assert np.all(np.diff(some.query_indices) > 0)
    np.testing.assert_array_equal(some.scores, r.scores[some.query_indices])


def test_segment_truncates_text_on_request(predictor):
    """Defect 5 (API side): an overlong text is refused unless truncate_text (keyword or SegmentOptions)."""
    text = " ".join(["cat"] * 40)
    with pytest.raises(InputError, match="truncate_text=True"):
        predictor.segment(text=text)
    a = predictor.segment(text=text, threshold=0.0, truncate_text=True)
    b = predictor.segment(text=text, options=sam3kit.SegmentOptions(threshold=0.0, truncate_text=True))
    assert len(a) == len(b) == 10
    np.testing.assert_array_equal(a.scores, b.scores)
    assert predictor.segment_batch(text=text, threshold=0.0, truncate_text=True)[0].scores.tolist() == \
        a.scores.tolist()
    with pytest.raises(InputError, match="truncate_text must be True or False"):
        sam3kit.SegmentOptions(truncate_text="yes")
