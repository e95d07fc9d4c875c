"""Unit tests of the tracker's prompt handling, single-mask selection and input validation."""

from __future__ import annotations

import pytest
import torch

from sam3kit.errors import InputError
from sam3kit.model.features import TrackerImageFeatures
from sam3kit.model.tracker.mask_decoder import select_single_mask, stability_scores
from tracker_refs import (
    build_tracker, max_diff, random_features,
)

G, D = 8, 64


@pytest.fixture(scope="module")
def tracker():
    return build_tracker(0)


@pytest.fixture(scope="module")
def feats():
    embed, high_res = random_features(0)
    return TrackerImageFeatures(embed=embed, high_res=high_res)


def test_stability_scores():
    logits = torch.tensor([[[1.0, -1.0], [0.01, 0.2]]])  # > 0.05: 2 pixels; > -0.05: 3 pixels
    assert torch.allclose(stability_scores(logits, 0.05), torch.tensor([2 / 3]))
    assert stability_scores(torch.full((1, 2, 2), -5.0), 0.05).item() == 1.0  # empty union counts as stable


def test_select_single_mask_picks_token0_when_stable_else_best_iou():
    masks = torch.zeros(2, 4, 3, 3)
    masks[0, 0] = 5.0  # stable token 0
    masks[1, 0] = 0.01  # unstable token 0 (all pixels inside the +-delta band)
    masks[:, 1:] = torch.arange(1, 4).view(1, 3, 1, 1).float()
    iou = torch.tensor([[0.1, 0.2, 0.9, 0.3], [0.1, 0.2, 0.3, 0.9]])
    m, s = select_single_mask(masks, iou, 0.05, 0.98)
    assert m.shape == (2, 1, 3, 3) and s.shape == (2, 1)
    assert torch.equal(m[0, 0], masks[0, 0]) and s[0, 0] == 0.1
    assert torch.equal(m[1, 0], masks[1, 3]) and s[1, 0] == 0.9


def test_prompt_encoder_padding_and_shapes(tracker):
    pe = tracker.prompt_encoder
    pts, lab = torch.rand(3, 2, 2) * 112, torch.ones(3, 2, dtype=torch.long)
    sparse, dense = pe(pts, lab)
    assert sparse.shape == (3, 3, D) and dense.shape == (3, D, G, G)
    assert torch.allclose(sparse[:, -1], pe.not_a_point_embed.weight.expand(3, -1))  # appended padding point
    sparse, dense = pe(masks=torch.randn(2, 1, 4 * G, 4 * G))
    assert sparse.shape == (2, 0, D) and dense.shape == (2, D, G, G)
    assert pe.dense_pe().shape == (1, D, G, G)


def test_box_is_two_corner_points_before_the_clicks(tracker, feats):
    box = torch.tensor([[10.0, 20.0, 70.0, 90.0]])
    clicks, lab = torch.tensor([[[40.0, 50.0]]]), torch.tensor([[0]])
    with torch.no_grad():
        a = tracker.predict(feats, clicks, lab, boxes=box)
        b = tracker.predict(feats, torch.cat([box.view(1, 2, 2), clicks], 1), torch.tensor([[2, 3, 0]]))
    assert torch.equal(a.mask_logits, b.mask_logits) and torch.equal(a.iou_scores, b.iou_scores)


def test_one_image_features_broadcast_to_prompt_sets(tracker, feats):
    pts, lab = torch.rand(3, 2, 2) * 112, torch.tensor([[1, 0], [1, -1], [1, 1]])
    expanded = TrackerImageFeatures(embed=feats.embed.expand(3, -1, -1, -1),
                                    high_res=[h.expand(3, -1, -1, -1) for h in feats.high_res])
    with torch.no_grad():
        a = tracker.predict(feats, pts, lab, multimask=False)
        b = tracker.predict(expanded, pts, lab, multimask=False)
        one = tracker.predict(feats, pts[1:2], lab[1:2], multimask=False)
    assert max_diff(a.mask_logits, b.mask_logits) <= 1e-5
    assert max_diff(a.mask_logits[1:2], one.mask_logits) <= 1e-5


def test_no_memory_embedding_flag(tracker, feats):
    pts, lab = torch.tensor([[[30.0, 60.0]]]), torch.tensor([[1]])
    shifted = TrackerImageFeatures(embed=feats.embed + tracker.no_memory_embedding.view(1, -1, 1, 1),
                                   high_res=feats.high_res)
    with torch.no_grad():
        a = tracker.predict(feats, pts, lab)
        b = tracker.predict(shifted, pts, lab, add_no_memory_embedding=False)
    assert max_diff(a.mask_logits, b.mask_logits) <= 1e-5


def test_low_res_logits_are_clamped(tracker, feats):
    big = TrackerImageFeatures(embed=feats.embed, high_res=[h * 1e3 for h in feats.high_res])
    with torch.no_grad():
        out = tracker.predict(big, torch.tensor([[[30.0, 60.0]]]), torch.tensor([[1]]))
    assert out.mask_logits.abs().max() == 32.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(points=torch.zeros(1, 1, 2)), "without point_labels"),
    (dict(point_labels=torch.ones(1, 1)), "without points"),
    (dict(points=torch.zeros(1, 2), point_labels=torch.ones(1, 2)), r"\(B, N, 2\)"),
    (dict(points=torch.zeros(1, 2, 2), point_labels=torch.ones(1, 3)), "point_labels must be"),
    (dict(boxes=torch.zeros(1, 2, 2)), r"\(B, 4\)"),
    (dict(mask_input=torch.zeros(1, 1, 16, 16)), "mask_input must be"),
    (dict(points=torch.zeros(2, 1, 2), point_labels=torch.ones(2, 1), boxes=torch.zeros(3, 4)), "differ"),
])
def test_input_errors(tracker, feats, kwargs, match):
    with pytest.raises(InputError, match=match):
        tracker.predict(feats, **kwargs)


def test_features_prompt_batch_mismatch(tracker):
    embed, high_res = random_features(0, batch=2)
    with pytest.raises(InputError, match="batch"):
        tracker.predict(TrackerImageFeatures(embed, high_res), torch.zeros(3, 1, 2), torch.ones(3, 1))
