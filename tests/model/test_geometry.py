"""GeometryEncoder against transformers' Sam3GeometryEncoder (same random weights, fp32).

transformers calls torchvision's roi_align, which this environment does not have: the test installs the slow
literal reference of tests/fixtures/roi_align_reference.py in its place, so this parity also checks our vectorised
ROI-align inside the encoder against an independent implementation.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from fixtures.roi_align_reference import roi_align_reference
from fixtures.weights import randomize_
from sam3kit.config import Sam3Config
from sam3kit.model.geometry import GeometryEncoder
from sam3kit.model.position import sine_position_2d

transformers = pytest.importorskip("transformers")
# (``from transformers.models.sam3 import modeling_sam3`` yields a dummy object without torchvision)
import transformers.models.sam3.modeling_sam3 as hf_sam3  # noqa: E402

TOL = 1e-4



@pytest.fixture
def hf_roi_align(monkeypatch):
    monkeypatch.setattr(hf_sam3, "torchvision", SimpleNamespace(ops=SimpleNamespace(roi_align=roi_align_reference)),
                        raising=False)


def _pair(seed: int):
    cfg = Sam3Config.tiny().detector
    ours = randomize_(GeometryEncoder(cfg.geometry, cfg.roi_size), seed).eval()
    hf_cfg = transformers.Sam3Config(**Sam3Config.tiny().to_hf_dict()["detector_config"]).geometry_encoder_config
    hf_cfg._attn_implementation = "eager"  # as Sam3Model sets it; left unset, the padding mask is mishandled
    theirs = hf_sam3.Sam3GeometryEncoder(hf_cfg).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return cfg, ours, theirs


def _image(seed: int, bsz: int, d: int, g: int):
    gen = torch.Generator().manual_seed(100 + seed)
    feats = torch.randn(bsz, d, g, g, generator=gen) * 2 + 0.5
    return feats, sine_position_2d(g, g, d)


def _boxes(seed: int, bsz: int, nb: int):
    gen = torch.Generator().manual_seed(200 + seed)
    centre = torch.rand(bsz, nb, 2, generator=gen) * 1.1 - 0.05  # some boxes cross the image border
    size = torch.rand(bsz, nb, 2, generator=gen) * 0.8 + 0.02
    labels = torch.randint(0, 2, (bsz, nb), generator=gen)
    return torch.cat([centre, size], dim=-1), labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boxes_with_padding_match_transformers(seed, hf_roi_align):
    cfg, ours, theirs = _pair(seed)
    d, g = cfg.d_model, cfg.vit.grid_size
    feats, pos = _image(seed, 2, d, g)
    boxes, labels = _boxes(seed, 2, 3)
    padding = torch.tensor([[False, False, False], [False, True, True]])
    with torch.no_grad():
        tok, mask = ours(boxes, labels, padding, feats, pos)
        ref = theirs(box_embeddings=boxes, box_mask=~padding, box_labels=labels, img_feats=(feats,),
                     img_pos_embeds=(pos[None].expand(2, -1, -1, -1),))
    assert torch.equal(mask, ~ref.attention_mask)
    valid = ~mask
    diff = (tok[valid] - ref.last_hidden_state[valid]).abs().max().item()
    print(f"geometry tokens seed={seed}: max|diff| = {diff:.2e}")
    assert diff <= TOL, diff


def test_no_box_gives_the_cls_token_only(hf_roi_align):
    cfg, ours, theirs = _pair(3)
    feats, pos = _image(3, 2, cfg.d_model, cfg.vit.grid_size)
    empty = torch.zeros(2, 0, 4)
    no_label = torch.zeros(2, 0, dtype=torch.long)
    no_pad = torch.zeros(2, 0, dtype=torch.bool)
    with torch.no_grad():
        tok, mask = ours(empty, no_label, no_pad, feats, pos)
        ref = theirs(box_embeddings=empty, box_mask=~no_pad, box_labels=no_label, img_feats=(feats,),
                     img_pos_embeds=(pos[None].expand(2, -1, -1, -1),))
    assert tok.shape == (2, 1, cfg.d_model) and not mask.any()
    diff = (tok - ref.last_hidden_state).abs().max().item()
    print(f"geometry CLS-only: max|diff| = {diff:.2e}")
    assert diff <= TOL, diff


def test_padding_may_sit_anywhere():
    cfg, ours, _ = _pair(4)
    feats, pos = _image(4, 1, cfg.d_model, cfg.vit.grid_size)
    boxes, labels = _boxes(4, 1, 4)
    padding = torch.tensor([[True, False, True, False]])
    boxes_bad = boxes.clone()
    boxes_bad[padding] = float("nan")  # padding content must not leak
    with torch.no_grad():
        tok, mask = ours(boxes_bad, labels, padding, feats, pos)
        keep = ~padding[0]
        tok_c, mask_c = ours(boxes[:, keep], labels[:, keep], padding[:, keep], feats, pos)
    assert torch.isfinite(tok).all()
    assert mask.tolist() == [[False, False, False, True, True]]
    assert (tok[:, :3] - tok_c).abs().max().item() <= 1e-5
