"""Directories written by transformers itself (``save_pretrained``) load strictly, and the same random weights
saved by transformers and in the official ``sam3.pt`` layout give identical outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.weights.writer import hf_state_dict, save_official

from fixtures.weights import randomize_

transformers = pytest.importorskip("transformers")  # a test dependency (the `test` extra); always present in CI


@pytest.fixture(scope="module")
def ours():
    return randomize_(Sam3Model(Sam3Config.tiny(d=128)).eval(), seed=21)


def _state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sam3model_save_pretrained_directory(ours, tmp_path):
    cfg = ours.config
    hf = transformers.Sam3Model(transformers.Sam3Config(**cfg.to_hf_dict()["detector_config"]))
    sd = hf_state_dict(ours.state_dict(), cfg)
    det = {k[len("detector_model."):]: v for k, v in sd.items() if k.startswith("detector_model.")}
    hf.load_state_dict(det, strict=True)
    hf.save_pretrained(tmp_path / "hf_det")
    loaded = sam3kit.load(tmp_path / "hf_det")
    assert loaded.config.tracker is None
    assert loaded.config.detector == cfg.detector
    _state_equal(loaded.detector_model.state_dict(), ours.detector_model.state_dict())


def test_sam3videomodel_save_pretrained_directory(ours, tmp_path):
    cfg = ours.config
    hf = transformers.Sam3VideoModel(transformers.Sam3VideoConfig(**cfg.to_hf_dict()))
    hf.load_state_dict(hf_state_dict(ours.state_dict(), cfg), strict=True)
    hf.save_pretrained(tmp_path / "hf_video")
    loaded = sam3kit.load(tmp_path / "hf_video")
    assert loaded.config == cfg
    _state_equal(loaded.state_dict(), ours.state_dict())


def test_transformers_and_official_layouts_give_identical_outputs(ours, tmp_path):
    cfg = ours.config
    hf = transformers.Sam3VideoModel(transformers.Sam3VideoConfig(**cfg.to_hf_dict()))
    hf.load_state_dict(hf_state_dict(ours.state_dict(), cfg), strict=True)
    hf.save_pretrained(tmp_path / "hf")
    save_official(ours.state_dict(), cfg, tmp_path / "off" / "sam3.pt")
    img = np.random.default_rng(0).integers(0, 256, (50, 75, 3), dtype=np.uint8)
    outs, states = [], []
    for src in (tmp_path / "hf", tmp_path / "off" / "sam3.pt"):
        m = sam3kit.load(src)
        states.append(m.state_dict())
        p = sam3kit.ImagePredictor(m)
        p.set_image(img)
        seg = p.segment(text="a cat", boxes=[[5, 5, 40, 30]], box_labels=[1], threshold=0.0, return_mask_logits=True)
        click = p.predict(points=[[20, 30]])
        outs.append((seg, click))
    _state_equal(*states)  # bit-identical weights
    # Outputs agree to the last bits only: weights stay memory-mapped where each file put them (safetensors uses
    # 8-byte offsets, torch.save 64-byte ones), and BLAS kernels may round differently on differently aligned data.
    (s1, c1), (s2, c2) = outs
    for f, tol in (("mask_logits", 1e-4), ("boxes", 1e-3), ("scores", 1e-5)):
        np.testing.assert_allclose(getattr(s1, f), getattr(s2, f), atol=tol, rtol=0, err_msg=f)
    assert abs(s1.presence - s2.presence) < 1e-6
    np.testing.assert_allclose(c1.low_res_logits, c2.low_res_logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(c1.iou_scores, c2.iou_scores, atol=1e-5, rtol=0)
