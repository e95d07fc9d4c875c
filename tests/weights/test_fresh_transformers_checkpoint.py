"""A checkpoint that transformers saves from a freshly initialised ``Sam3VideoModel`` holds two *different* copies of
the tracker's Gaussian matrix (the release holds equal ones). It loads, and each copy is used where transformers
uses it: ``prompt_encoder.shared_embedding`` for prompt coordinates, ``shared_image_embedding`` for the image-wide
position encoding, so our interactive tracker equals transformers' ``Sam3TrackerModel`` on those weights.

At transformers' initialisation (std 0.02) the masks hardly depend on the position encodings (swapping the copies
moves them by about 1e-6), so the tracker's other weights are drawn larger (std 0.1, as in the tracker parity
tests) before saving; the two Gaussian copies stay as transformers initialised them.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.model.features import TrackerImageFeatures

from fixtures.weights import randomize_
from model.tracker.tracker_refs import hf_tracker_config, max_diff, random_features

transformers = pytest.importorskip("transformers")  # a test dependency (the `test` extra); always present in CI

PROMPT_GAUSSIAN = "prompt_encoder.shared_embedding.positional_embedding"
IMAGE_GAUSSIAN = "shared_image_embedding.positional_embedding"
S, G = 112, 8  # Sam3Config.tiny(): input side, embedding grid
TOL = 1e-4  # as the tracker parity tests


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(our model loaded from the saved folder, transformers Sam3TrackerModel with the folder's tracker weights)."""
    d = tmp_path_factory.mktemp("fresh_transformers")
    torch.manual_seed(5)
    hf = transformers.Sam3VideoModel(transformers.Sam3VideoConfig(**Sam3Config.tiny().to_hf_dict())).eval()
    gaussians = {n: b.clone() for n, b in hf.tracker_model.named_buffers() if n in (PROMPT_GAUSSIAN, IMAGE_GAUSSIAN)}
    assert len(gaussians) == 2
    randomize_(hf.tracker_model, seed=5, std=0.1)
    with torch.no_grad():
        for n, b in hf.tracker_model.named_buffers():
            if n in gaussians:
                b.copy_(gaussians[n])
    hf.save_pretrained(d)
    ours = sam3kit.load(d)
    # the folder's tracker tensors, whatever prefix transformers wrote them under
    tracker_sd = {}
    for k, v in load_file(d / "model.safetensors").items():
        for prefix in ("tracker_model.tracker_model.", "tracker_model."):
            if k.startswith(prefix):
                tracker_sd[k[len(prefix):]] = v
                break
    ref = transformers.Sam3TrackerModel(hf_tracker_config()).eval()
    ref_keys = set(ref.state_dict())
    not_given = {k for k in ref_keys - set(tracker_sd) if not k.startswith("vision_encoder.")}
    assert not not_given, f"reference tensors without a counterpart in the folder: {sorted(not_given)}"
    ref.load_state_dict({k: v for k, v in tracker_sd.items() if k in ref_keys}, strict=False)
    return ours, ref, tracker_sd


def test_the_two_copies_differ_and_load_as_saved(fresh):
    ours, _, saved = fresh
    assert not torch.equal(saved[PROMPT_GAUSSIAN], saved[IMAGE_GAUSSIAN])  # what this file is about
    state = ours.tracker_model.state_dict()
    assert torch.equal(state[PROMPT_GAUSSIAN], saved[PROMPT_GAUSSIAN])
    assert torch.equal(state[IMAGE_GAUSSIAN], saved[IMAGE_GAUSSIAN])


def test_image_wide_encoding_uses_its_own_copy(fresh):
    ours, ref, _ = fresh
    with torch.no_grad():
        theirs = ref.get_image_wide_positional_embeddings()
    assert max_diff(ours.tracker_model.dense_pe(), theirs) <= 1e-5
    # the prompt encoder's copy would give another encoding of the grid
    assert max_diff(ours.tracker_model.prompt_encoder.dense_pe(), theirs) > 0.1


@pytest.mark.parametrize("multimask", [True, False])
def test_tracker_matches_transformers(fresh, multimask):
    ours, ref, _ = fresh
    gen = torch.Generator().manual_seed(7)
    embed, high_res = random_features(3)
    points = torch.rand(1, 2, 2, generator=gen) * S
    labels = torch.tensor([[1, 0]])
    xy = torch.rand(1, 2, 2, generator=gen) * S
    box = torch.cat([xy.min(1).values, xy.max(1).values], dim=-1)
    with torch.no_grad():
        out = ours.tracker_model.predict(TrackerImageFeatures(embed=embed, high_res=high_res), points, labels, box,
                                         multimask=multimask)
        # transformers: box corners (labels 2, 3) before the clicks as the official predictor orders them, and
        # no_memory_embedding added to the g x g level as the official predictor does
        o = ref(image_embeddings=[high_res[0], high_res[1], embed + ref.no_memory_embedding.view(1, -1, 1, 1)],
                input_points=torch.cat([box.view(1, 2, 2), points], dim=1)[:, None],
                input_labels=torch.cat([torch.tensor([[2, 3]]), labels], dim=1)[:, None],
                multimask_output=multimask)
    dm = max_diff(out.mask_logits, o.pred_masks.flatten(0, 1).clamp(-32, 32))
    di = max_diff(out.iou_scores, o.iou_scores.flatten(0, 1))
    do = max_diff(out.object_score_logit, o.object_score_logits.flatten(0, 1))
    assert dm <= TOL and di <= TOL and do <= TOL, f"masks {dm:.2e}, iou {di:.2e}, obj {do:.2e}"
    # the check can tell the copies apart: the prompt encoder's copy for the grid moves the masks far beyond TOL
    one_matrix = TrackerImageFeatures(embed=embed, high_res=high_res,
                                      dense_pe=ours.tracker_model.prompt_encoder.dense_pe())
    with torch.no_grad():
        wrong = ours.tracker_model.predict(one_matrix, points, labels, box, multimask=multimask)
    assert max_diff(wrong.mask_logits, out.mask_logits) > 100 * TOL
