"""``sam3kit.testing.tiny_checkpoint``: a tiny random checkpoint in each released layout that loads and runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sam3kit
from sam3kit.errors import InputError, OutputError
from sam3kit.testing import tiny_checkpoint


def _load_aligned(path):
    """Weights copied to fresh memory, so that both layouts give bit-equal outputs (a memory-mapped safetensors
    tensor may sit at an offset that makes MKL round the last bit differently)."""
    model = sam3kit.load(path)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            t.data = t.data.clone()
    return model


def _run(model, image):
    p = sam3kit.ImagePredictor(model)
    p.set_image(image)
    return p.segment(text="a dog", threshold=0.0), p.predict(points=[[30, 20]], point_labels=[1])


def test_both_layouts_load_and_run_the_same_model(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    hf = tiny_checkpoint(tmp_path / "hf")
    off = tiny_checkpoint(tmp_path / "off", layout="official")
    assert {p.name for p in hf.iterdir()} == {"config.json", "model.safetensors", "vocab.json", "merges.txt"}
    assert {p.name for p in off.iterdir()} == {"config.json", "sam3.pt", "vocab.json", "merges.txt"}
    (seg_a, pred_a), (seg_b, pred_b) = _run(_load_aligned(hf), image), _run(_load_aligned(off), image)
    assert len(seg_a) == 10 and seg_a.masks.shape == (10, 48, 64)  # threshold 0: every query of the tiny decoder
    assert pred_a.masks.shape == (3, 48, 64) and pred_a.iou_scores.shape == (3,)
    assert np.array_equal(seg_a.masks, seg_b.masks) and np.array_equal(seg_a.scores, seg_b.scores)
    assert np.array_equal(pred_a.masks, pred_b.masks) and np.array_equal(pred_a.iou_scores, pred_b.iou_scores)
    model = sam3kit.load(hf)
    assert model.tokenizer is not None and model.config == sam3kit.Sam3Config.tiny()


def test_seed_and_refusals(tmp_path):
    a = sam3kit.load(tiny_checkpoint(tmp_path / "a", seed=1)).state_dict()
    b = sam3kit.load(tiny_checkpoint(tmp_path / "b", seed=1, tokenizer=False)).state_dict()
    c = sam3kit.load(tiny_checkpoint(tmp_path / "c", seed=2)).state_dict()
    k = "detector_model.detr_decoder.query_embed.weight"
    assert torch.equal(a[k], b[k]) and not torch.equal(a[k], c[k])
    assert not (tmp_path / "b" / "vocab.json").exists()
    with pytest.raises(OutputError, match="exists already; pass overwrite=True"):
        tiny_checkpoint(tmp_path / "a")
    tiny_checkpoint(tmp_path / "a", seed=2, overwrite=True)
    assert torch.equal(sam3kit.load(tmp_path / "a").state_dict()[k], c[k])
    with pytest.raises(InputError, match="unknown layout 'onnx'"):
        tiny_checkpoint(tmp_path / "d", layout="onnx")
    det = tiny_checkpoint(tmp_path / "det", config=sam3kit.Sam3Config.tiny(with_tracker=False))
    assert not sam3kit.load(det).has_tracker


def test_the_suite_fixture_is_the_public_helper(tiny_checkpoint, tmp_path):
    from sam3kit.testing import tiny_checkpoint as make

    again = make(tmp_path)
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt"):
        assert (again / name).read_bytes() == (tiny_checkpoint / name).read_bytes(), name
