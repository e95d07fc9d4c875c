"""``sam3kit convert``: official .pt <-> safetensors and dtypes; converted checkpoints load and give the same outputs."""

from __future__ import annotations

import numpy as np
import torch
from safetensors import safe_open

import sam3kit
from sam3kit.cli import main
from sam3kit.cli.info import OFFICIAL_COMPONENTS, describe


def _load(source, **kw):
    """Load, then copy every tensor to fresh (allocator-aligned) memory: tensors memory-mapped from a safetensors
    file sit at arbitrary offsets, and MKL's results then differ in the last bit from the same weights aligned
    (measured: 7.6e-6 px on boxes). Equal weights in equal memory give bit-equal outputs."""
    model = sam3kit.load(source, **kw)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            t.data = t.data.clone()
    return model


def _outputs(model, image):
    p = sam3kit.ImagePredictor(model)
    p.set_image(image)
    seg = p.segment(text="red car", threshold=0.0)
    pred = p.predict(points=[[40, 30], [10, 12]], point_labels=[1, 0])
    return seg, pred


def _assert_same_outputs(a, b):
    (sa, pa), (sb, pb) = a, b
    assert np.array_equal(sa.masks, sb.masks) and np.array_equal(sa.boxes, sb.boxes)
    assert np.array_equal(sa.scores, sb.scores) and sa.presence == sb.presence
    assert np.array_equal(pa.masks, pb.masks) and np.array_equal(pa.iou_scores, pb.iou_scores)
    assert np.array_equal(pa.low_res_logits, pb.low_res_logits) and pa.object_score == pb.object_score


def test_convert_roundtrip_same_outputs(cli, tiny_checkpoint, images, tmp_path):
    pt = tmp_path / "official" / "sam3.pt"
    r = cli("convert", tiny_checkpoint, pt)
    assert r.returncode == 0, r.stderr
    assert "official sam3.pt layout" in r.stdout
    assert {p.name for p in pt.parent.iterdir()} == {"sam3.pt", "config.json", "vocab.json", "merges.txt"}
    official = describe(str(pt))
    assert official["layout"] == "official" and set(official["components"]) <= {c for _, c in OFFICIAL_COMPONENTS}
    back = tmp_path / "back"
    r = cli("convert", pt, back, "--verify")
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout
    # the safetensors written back has the original's names, shapes and values
    with safe_open(str(tiny_checkpoint / "model.safetensors"), "pt") as f0, \
            safe_open(str(back / "model.safetensors"), "pt") as f1:
        assert set(f0.keys()) == set(f1.keys())
        assert all(torch.equal(f0.get_tensor(k), f1.get_tensor(k)) for k in f0.keys())
    # ... and, loaded, the official file gives the same outputs as the original
    _assert_same_outputs(_outputs(_load(tiny_checkpoint), images / "a.png"), _outputs(_load(pt), images / "a.png"))
    # --dtype: the CLI's code in-process this time (a subprocess per conversion is slow)
    half = tmp_path / "half" / "model.safetensors"
    assert main(["convert", str(tiny_checkpoint), str(half), "--dtype", "bf16"]) == 0
    assert set(describe(str(half))["dtypes"]) == {"bfloat16"}
    with safe_open(str(tiny_checkpoint / "model.safetensors"), "pt") as f0, safe_open(str(half), "pt") as f1:
        assert all(torch.equal(f0.get_tensor(k).to(torch.bfloat16), f1.get_tensor(k)) for k in f0.keys())
    # existing files are kept without --force
    assert main(["convert", str(tiny_checkpoint), str(half), "--dtype", "bf16"]) == 2
