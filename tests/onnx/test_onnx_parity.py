"""Each exported fp32 graph against the torch modules it was traced from, through ONNX Runtime's CPU provider:
every output within 1e-4 (absolute), on inputs of other sizes than the trace's (batch 2, other token counts, box
counts, object counts, empty prompt axes)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sam3kit.model.features import TextFeatures, TrackerImageFeatures
from sam3kit.onnx.sessions import session_options

TOL = 1e-4


@pytest.fixture(scope="module")
def sessions(export_dir):
    so = session_options()  # a global thread pool may exist already (another test's int8 torch path)
    names = ("vision_encoder", "text_encoder", "detector", "prompt_encoder_mask_decoder")
    return {n: ort.InferenceSession(str(export_dir / f"{n}.onnx"), so, providers=["CPUExecutionProvider"])
            for n in names}


def _run(session, **feeds) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {k: np.ascontiguousarray(v) for k, v in feeds.items()})))


def _close(got: np.ndarray, want: torch.Tensor, what: str) -> None:
    want = want.detach().float().numpy()
    assert got.shape == want.shape, what
    assert np.abs(got - want).max() <= TOL, (what, float(np.abs(got - want).max()))


@pytest.fixture(scope="module")
def encoded(plain_model, sessions):
    """Torch encodings of two images (pixels (2, 3, S, S)) and the vision graph's outputs for them."""
    g = torch.Generator().manual_seed(1)
    pixels = torch.rand(2, 3, 112, 112, generator=g) * 2 - 1
    with torch.no_grad():
        trunk = plain_model.image_trunk(pixels)
        det = plain_model.detector_features(trunk)  # with the per-image terms, as ImagePredictor uses them
        trk = plain_model.tracker_features(trunk)
    return pixels, det, trk, _run(sessions["vision_encoder"], pixel_values=pixels.numpy())


def test_vision_encoder(encoded):
    _, det, trk, out = encoded
    for i, level in enumerate(det.fpn):
        _close(out[f"detector_embeddings.{i}"], level, f"detector level {i}")
    _close(out["image_embeddings.0"], trk.high_res[0], "tracker conv_s0 level")
    _close(out["image_embeddings.1"], trk.high_res[1], "tracker conv_s1 level")
    _close(out["image_embeddings.2"], trk.embed, "tracker g x g level")


def test_text_encoder(plain_model, sessions):
    ids = torch.zeros(2, 32, dtype=torch.int64)
    ids[0, :5] = torch.tensor([49406, 320, 1929, 2368, 49407])
    ids[1, :] = torch.randint(1, 49406, (32,), generator=torch.Generator().manual_seed(2))
    for n in (32, 5, 1):
        with torch.no_grad():
            want = plain_model.encode_text(ids[:, :n], ids[:, :n] == 0).features
        _close(_run(sessions["text_encoder"], input_ids=ids[:, :n].numpy())["text_features"], want, f"{n} tokens")


@pytest.mark.parametrize("prompt", ["text", "boxes", "padding box in the middle"])
def test_detector(plain_model, sessions, encoded, prompt):
    _, det, _, vis = encoded
    d = plain_model.config.detector.d_model
    g = torch.Generator().manual_seed(3)
    text = TextFeatures(torch.randn(2, 6, d, generator=g), torch.tensor([[False] * 4 + [True] * 2, [False] * 6]))
    boxes = torch.tensor([[[0.5, 0.5, 0.3, 0.2], [0.3, 0.4, 0.2, 0.1], [0.6, 0.6, 0.2, 0.3]]]).expand(2, -1, -1)
    labels = torch.tensor([[1, 0, 1], [1, 1, 0]])
    if prompt == "text":  # the graph's text-only form: one box labelled -1 (padding); torch: no box at all
        feed_boxes, feed_labels = torch.zeros(2, 1, 4), torch.full((2, 1), -1)
        with torch.no_grad():
            want = plain_model.detect(det, text)
    else:
        feed_boxes, feed_labels = boxes, labels
        padding = torch.zeros(2, 3, dtype=torch.bool)
        if prompt == "padding box in the middle":
            feed_labels = torch.tensor([[1, -1, 1], [-1, 1, 0]])
            padding = feed_labels < 0
        with torch.no_grad():
            want = plain_model.detect(det, text, boxes, feed_labels.clamp(min=0), padding)
    out = _run(sessions["detector"], **{f"detector_embeddings.{i}": vis[f"detector_embeddings.{i}"] for i in range(3)},
               text_features=text.features.numpy(), text_padding_mask=text.padding_mask.numpy(),
               input_boxes=feed_boxes.numpy(), input_box_labels=feed_labels.numpy())
    _close(out["logits"], want.logits, "logits")
    _close(out["pred_boxes"], want.boxes, "boxes")
    _close(out["presence_logits"], want.presence_logit, "presence")
    _close(out["pred_masks"], want.mask_logits, "mask logits")
    _close(out["semantic_logits"], want.semantic_logits, "semantic logits")


def _objects(case: str, s: float = 112.0):
    """K objects' prompts as the graph takes them and as ``Sam3Model.predict_masks`` takes them (per object)."""
    g = torch.Generator().manual_seed(4)
    k, n = 3, 2
    pts = torch.rand(1, k, n, 2, generator=g) * s
    labels = torch.tensor([[[1, 0], [1, 1], [0, 1]]])
    xy = torch.rand(1, k, 2, generator=g) * s / 2
    boxes = torch.cat([xy, xy + s / 3], dim=-1)
    masks = torch.randn(1, k, 32, 32, generator=g) * 4
    none_pts, none_labels = torch.zeros(1, 1, 0, 2), torch.zeros(1, k, 0, dtype=torch.int64)
    no_boxes, no_masks = torch.zeros(1, 0, 4), torch.zeros(1, 0, 32, 32)
    feeds = {  # graph inputs; then torch's (points, labels, boxes, masks) of the K objects
        "clicks and a box each": ((pts, labels, boxes, no_masks), (pts[0], labels[0], boxes[0], None)),
        "clicks only": ((pts, labels, no_boxes, no_masks), (pts[0], labels[0], None, None)),
        "boxes only": ((none_pts, none_labels, boxes, no_masks), (None, None, boxes[0], None)),
        "one box shared by every object": ((pts, labels, boxes[:, :1], no_masks),
                                           (pts[0], labels[0], boxes[0, :1].expand(k, -1), None)),
        "clicks and a mask": ((pts, labels, no_boxes, masks), (pts[0], labels[0], None, masks[0][:, None])),
        "mask only": ((torch.zeros(1, k, 0, 2), none_labels, no_boxes, masks), (None, None, None, masks[0][:, None])),
    }
    return feeds[case]


@pytest.mark.parametrize("case", ["clicks and a box each", "clicks only", "boxes only",
                                  "one box shared by every object", "clicks and a mask", "mask only"])
def test_prompt_encoder_mask_decoder(plain_model, sessions, encoded, case):
    _, _, trk, vis = encoded
    (pts, labels, boxes, masks), (tp, tl, tb, tm) = _objects(case)
    # image 1 of the two, as its own batch of one (the graph's batch = images; objects per image)
    one = TrackerImageFeatures(embed=trk.embed[1:], high_res=[f[1:] for f in trk.high_res], dense_pe=trk.dense_pe)
    emb = {f"image_embeddings.{i}": vis[f"image_embeddings.{i}"][1:] for i in range(3)}
    out = _run(sessions["prompt_encoder_mask_decoder"], input_points=pts.numpy(), input_labels=labels.numpy(),
               input_boxes=boxes.numpy(), input_masks=masks.numpy(), **emb)
    for multimask, masks_name, iou_name in ((True, "pred_masks", "iou_scores"),
                                            (False, "single_pred_masks", "single_iou_scores")):
        with torch.no_grad():
            want = plain_model.predict_masks(one, tp, tl, tb, tm, multimask=multimask)
        _close(out[masks_name][0], want.mask_logits, f"{case}: {masks_name}")
        _close(out[iou_name][0], want.iou_scores, f"{case}: {iou_name}")
        _close(out["object_score_logits"][0], want.object_score_logit, f"{case}: object score")


def test_batch_of_images_in_the_prompt_decoder(plain_model, sessions, encoded):
    """Two images with two objects each: object k of image b uses image b's features."""
    _, _, trk, vis = encoded
    pts = torch.tensor([[[[10.0, 20.0]], [[60.0, 70.0]]], [[[30.0, 30.0]], [[90.0, 40.0]]]])
    labels = torch.ones(2, 2, 1, dtype=torch.int64)
    out = _run(sessions["prompt_encoder_mask_decoder"], input_points=pts.numpy(), input_labels=labels.numpy(),
               input_boxes=np.zeros((2, 0, 4), np.float32),
               **{f"image_embeddings.{i}": vis[f"image_embeddings.{i}"] for i in range(3)})
    for b in range(2):
        one = TrackerImageFeatures(embed=trk.embed[b:b + 1], high_res=[f[b:b + 1] for f in trk.high_res],
                                   dense_pe=trk.dense_pe)
        with torch.no_grad():
            want = plain_model.predict_masks(one, pts[b], labels[b])
        _close(out["pred_masks"][b], want.mask_logits, f"image {b}")
