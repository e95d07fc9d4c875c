"""Interactive single-image tracker (PVS) vs transformers ``Sam3TrackerModel``: same random weights, fp32.

The reference is fed ``image_embeddings`` with ``no_memory_embedding`` added to the g x g level, as the official
predictor does (transformers 5.23 adds it to the unused 36x36 level instead), and its low-res logits are
clamped to +-32 as the official predictor returns them.

``test_predict_matches_transformers`` is device-parametrised (``tests/fixtures/devices.py``): both models run on the
CPU, and again on the device under test (CUDA when there is one, TF32 off) at the same tolerance.
"""

from __future__ import annotations

import copy
import zlib

import pytest
import torch

from fixtures.devices import to_device
from sam3kit.model.features import TrackerImageFeatures
from tracker_refs import (
    build_tracker, hf_tracker_config, hf_tracker_state, max_diff, random_features,
)

transformers = pytest.importorskip("transformers")

SEEDS = (0, 1, 2)
S, G, D = 112, 8, 64
TOL = 1e-4


@pytest.fixture(scope="module", params=SEEDS)
def pair(request):
    seed = request.param
    ours = build_tracker(seed)
    hf = transformers.Sam3TrackerModel(hf_tracker_config()).eval()
    hf_keys = set(hf.state_dict())
    sd = {k: v for k, v in hf_tracker_state(ours).items() if k in hf_keys}
    not_given = {k for k in hf_keys - set(sd) if not k.startswith("vision_encoder.")}
    assert not not_given, f"reference tensors without a counterpart in ours: {sorted(not_given)}"
    hf.load_state_dict(sd, strict=False)
    return seed, ours, hf


@pytest.fixture(scope="module")
def device_pair(pair, test_device):
    """``pair`` on the test's device (copies; the CPU pair itself stays where it is)."""
    seed, ours, hf = pair
    dev = test_device.torch_device
    if dev.type == "cpu":
        return seed, ours, hf, dev
    return seed, copy.deepcopy(ours).to(dev), copy.deepcopy(hf).to(dev), dev


def _gen(seed: int, case: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + zlib.crc32(case.encode()) % 1000)


def _points(gen, b, n):
    return torch.rand(b, n, 2, generator=gen) * S


def _box(gen, b):
    xy = torch.rand(b, 2, 2, generator=gen) * S
    return torch.cat([xy.min(1).values, xy.max(1).values], dim=-1)  # (b, 4) xyxy


def _hf_run(hf, embed, high_res, multimask, **kw):
    emb = [high_res[0], high_res[1], embed + hf.no_memory_embedding.view(1, -1, 1, 1)]
    with torch.no_grad():
        o = hf(image_embeddings=emb, multimask_output=multimask, **kw)
    return o.pred_masks.flatten(0, 1).clamp(-32, 32), o.iou_scores.flatten(0, 1), o.object_score_logits.flatten(0, 1)


def _cases(seed):
    """(name, features batch, our kwargs, reference kwargs) with the reference in transformers' (B, P, ...) layout."""
    out = []
    g = _gen(seed, "one")
    p = _points(g, 1, 1)
    out.append(("one point", 1, dict(points=p, point_labels=torch.ones(1, 1, dtype=torch.long)),
                dict(input_points=p[:, None], input_labels=torch.ones(1, 1, 1, dtype=torch.long))))
    g = _gen(seed, "fgbg")
    p, lab = _points(g, 1, 4), torch.tensor([[1, 0, 1, 0]])
    out.append(("fg/bg points", 1, dict(points=p, point_labels=lab),
                dict(input_points=p[:, None], input_labels=lab[:, None])))
    g = _gen(seed, "box")
    bx = _box(g, 1)
    out.append(("box", 1, dict(boxes=bx), dict(input_boxes=bx[:, None])))
    g = _gen(seed, "boxpts")
    bx, p, lab = _box(g, 1), _points(g, 1, 2), torch.tensor([[1, 0]])
    # official order: box corners (labels 2, 3) before the clicks, then one padding point
    ref_p = torch.cat([bx.view(1, 2, 2), p], dim=1)
    ref_l = torch.cat([torch.tensor([[2, 3]]), lab], dim=1)
    out.append(("box + points", 1, dict(points=p, point_labels=lab, boxes=bx),
                dict(input_points=ref_p[:, None], input_labels=ref_l[:, None])))
    g = _gen(seed, "maskpts")
    m = torch.randn(1, 1, 4 * G, 4 * G, generator=g) * 8
    p = _points(g, 1, 1)
    out.append(("mask + point", 1, dict(points=p, point_labels=torch.ones(1, 1, dtype=torch.long), mask_input=m),
                dict(input_points=p[:, None], input_labels=torch.ones(1, 1, 1, dtype=torch.long), input_masks=m)))
    g = _gen(seed, "batch")
    p = _points(g, 3, 2)
    lab = torch.tensor([[1, -1], [1, 0], [1, 1]])  # first set: one click padded with label -1
    out.append(("3 prompt sets, one image", 1, dict(points=p, point_labels=lab),
                dict(input_points=p[None], input_labels=lab[None])))
    g = _gen(seed, "images")
    p = _points(g, 2, 1)
    out.append(("2 images, one click each", 2, dict(points=p, point_labels=torch.ones(2, 1, dtype=torch.long)),
                dict(input_points=p[:, None], input_labels=torch.ones(2, 1, 1, dtype=torch.long))))
    return out


CASE_NAMES = [c[0] for c in _cases(0)]


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", CASE_NAMES)
def test_predict_matches_transformers(device_pair, case, multimask):
    seed, ours, hf, dev = device_pair
    name, fb, our_kw, ref_kw = to_device(next(c for c in _cases(seed) if c[0] == case), dev)
    embed, high_res = to_device(random_features(seed, batch=fb), dev)
    with torch.no_grad():
        out = ours.predict(TrackerImageFeatures(embed=embed, high_res=high_res), multimask=multimask, **our_kw)
    ref_m, ref_iou, ref_obj = _hf_run(hf, embed, high_res, multimask, **ref_kw)
    m = 3 if multimask else 1
    b = ref_m.shape[0]
    assert out.mask_logits.shape == (b, m, 4 * G, 4 * G)
    assert out.iou_scores.shape == (b, m) and out.object_score_logit.shape == (b, 1)
    assert out.mask_tokens.shape == (b, m, D)
    dm, di, do = max_diff(out.mask_logits, ref_m), max_diff(out.iou_scores, ref_iou), max_diff(
        out.object_score_logit, ref_obj)
    msg = (f"{dev} seed {seed} {name} multimask={multimask}: max|diff| masks {dm:.2e} (max|ref| "
           f"{ref_m.abs().max():.2f}), iou {di:.2e}, obj {do:.2e}")
    print(msg)
    assert dm <= TOL and di <= TOL and do <= TOL, msg


def test_box_and_points_transformers_box_api(pair):
    """transformers' own box API puts the corners after the clicks; the decoder is token-permutation invariant."""
    seed, ours, hf = pair
    _, _, our_kw, _ = next(c for c in _cases(seed) if c[0] == "box + points")
    embed, high_res = random_features(seed)
    with torch.no_grad():
        out = ours.predict(TrackerImageFeatures(embed=embed, high_res=high_res), **our_kw)
    ref_m, ref_iou, ref_obj = _hf_run(hf, embed, high_res, True, input_points=our_kw["points"][:, None],
                                      input_labels=our_kw["point_labels"][:, None],
                                      input_boxes=our_kw["boxes"][:, None])
    dm, di = max_diff(out.mask_logits, ref_m), max_diff(out.iou_scores, ref_iou)
    print(f"seed {seed} box + points via transformers input_boxes: masks {dm:.2e}, iou {di:.2e}")
    assert dm <= TOL and di <= TOL


@pytest.mark.parametrize("multimask", [True, False])
def test_mask_only_has_no_sparse_tokens(pair, multimask):
    """Official ``_predict`` with only a mask prompt passes no point at all (zero sparse tokens); transformers'
    forward would append a padding point, so the reference is assembled from its prompt encoder and mask decoder."""
    seed, ours, hf = pair
    g = _gen(seed, "maskonly")
    m = torch.randn(1, 1, 4 * G, 4 * G, generator=g) * 8
    embed, high_res = random_features(seed)
    with torch.no_grad():
        out = ours.predict(TrackerImageFeatures(embed=embed, high_res=high_res), mask_input=m, multimask=multimask)
        _, dense = hf.prompt_encoder(None, None, None, m)
        ref_m, ref_iou, ref_tok, ref_obj = hf.mask_decoder(
            image_embeddings=embed + hf.no_memory_embedding.view(1, -1, 1, 1),
            image_positional_embeddings=hf.get_image_wide_positional_embeddings(),
            sparse_prompt_embeddings=torch.zeros(1, 1, 0, D), dense_prompt_embeddings=dense,
            multimask_output=multimask, high_resolution_features=high_res)
    dm = max_diff(out.mask_logits, ref_m[0].clamp(-32, 32))
    di, do = max_diff(out.iou_scores, ref_iou[0]), max_diff(out.object_score_logit, ref_obj[0])
    dt = max_diff(out.mask_tokens, ref_tok[0])
    print(f"seed {seed} mask only multimask={multimask}: masks {dm:.2e}, iou {di:.2e}, obj {do:.2e}, "
          f"mask tokens {dt:.2e}")
    assert dm <= TOL and di <= TOL and do <= TOL and dt <= TOL


def test_image_features_matches_transformers(pair):
    seed, ours, hf = pair
    gen = torch.Generator().manual_seed(seed)
    fpn = [torch.randn(1, D, s, s, generator=gen) for s in (4 * G, 2 * G, G)]
    with torch.no_grad():
        f = ours.image_features(fpn)
        ref0, ref1 = hf.mask_decoder.conv_s0(fpn[0]), hf.mask_decoder.conv_s1(fpn[1])
    assert f.embed is fpn[2]
    assert max_diff(f.high_res[0], ref0) <= 1e-6 and max_diff(f.high_res[1], ref1) <= 1e-6


def test_prompts_change_the_output(pair):
    """Guards the test weights against triviality: different prompts give clearly different masks."""
    seed, ours, _ = pair
    embed, high_res = random_features(seed)
    f = TrackerImageFeatures(embed=embed, high_res=high_res)
    with torch.no_grad():
        a = ours.predict(f, torch.tensor([[[20.0, 30.0]]]), torch.tensor([[1]]))
        b = ours.predict(f, boxes=torch.tensor([[10.0, 20.0, 60.0, 90.0]]))
    assert max_diff(a.mask_logits, b.mask_logits) > 0.1
    assert max_diff(a.iou_scores, b.iou_scores) > 1e-3


@pytest.mark.parametrize("stable", [True, False])
def test_single_mask_branches_match_transformers(pair, stable):
    """multimask=False: token 0 when stable, else the best-IoU multimask output. With random weights token 0 is
    unstable; scaling its hypernetwork output (in both models) makes its logits large, hence stable."""
    import copy

    seed, ours, hf = pair
    ours, hf = copy.deepcopy(ours), copy.deepcopy(hf)
    # Scaling token 0's hypernetwork output by 100 scales its logits, and their rounding error, by 100: the mask
    # tolerance scales with it (the upscaling sums in another order than transformers' ConvTranspose2d).
    scale = 100.0 if stable else 1.0
    if stable:
        with torch.no_grad():
            for m in (ours, hf):
                m.mask_decoder.output_hypernetworks_mlps[0].proj_out.weight.mul_(scale)
                m.mask_decoder.output_hypernetworks_mlps[0].proj_out.bias.mul_(scale)
    embed, high_res = random_features(seed)
    f = TrackerImageFeatures(embed=embed, high_res=high_res)
    p = _points(_gen(seed, "branch"), 4, 2)
    lab = torch.tensor([[1, 0], [1, 1], [1, -1], [0, 1]])
    with torch.no_grad():
        single = ours.predict(f, p, lab, multimask=False)
        multi = ours.predict(f, p, lab, multimask=True)
    ref_m, ref_iou, _ = _hf_run(hf, embed, high_res, False, input_points=p[None], input_labels=lab[None])
    dm, di = max_diff(single.mask_logits, ref_m), max_diff(single.iou_scores, ref_iou)
    print("absmax", ref_m.abs().max().item(), "up diff");print(f"seed {seed} single-mask {'stable' if stable else 'fallback'} branch: masks {dm:.2e}, iou {di:.2e}")
    assert dm <= TOL * scale and di <= TOL
    for i in range(4):
        picked_multi = [torch.equal(single.mask_logits[i, 0], multi.mask_logits[i, k]) for k in range(3)]
        if stable:
            assert not any(picked_multi)
        else:
            best = int(multi.iou_scores[i].argmax())
            assert picked_multi[best] and torch.equal(single.iou_scores[i, 0], multi.iou_scores[i, best])
