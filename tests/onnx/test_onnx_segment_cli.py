"""``sam3kit segment --model EXPORT_DIR``: the command on an ONNX export gives what ``OnnxPredictor`` gives, runs
in a Python where importing torch fails, keeps the skip check of the checkpoint path (a fingerprint of the graphs
used), and refuses the flags an export cannot serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sam3kit.cli import main
from sam3kit.io.image import load_image
from sam3kit.onnx import OnnxPredictor

from test_onnx_no_torch import BLOCKER

BOX = [10, 10, 60, 50]


@pytest.fixture
def photo(image, tmp_path):
    path = tmp_path / "photo.png"  # lossless: the command decodes the pixels of ``image``
    Image.fromarray(image).save(path)
    return path


def _result(out):
    return json.loads((out / "photo" / "result.json").read_text())


def test_concepts_and_clicks_match_the_predictor(export_dir, photo, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["segment", str(photo), "--model", str(export_dir), "--text", "a dog", "--box", ",".join(map(str, BOX)),
            "--threshold", "0.0", "--out", str(out), "--format", "json,png", "-q"]
    assert main(args) == 0, capsys.readouterr().err
    got = _result(out)

    p = OnnxPredictor(export_dir)
    p.set_image(load_image(photo))
    seg = p.segment(text="a dog", boxes=[BOX], threshold=0.0)
    inst = got["instances"]
    assert len(inst) == len(seg) > 0
    assert [i["score"] for i in inst] == pytest.approx(seg.scores.tolist(), abs=1e-6)
    assert np.allclose([i["box"] for i in inst], seg.boxes, atol=1e-3)
    for rec, mask in zip(inst, seg.masks):
        assert np.array_equal(np.asarray(Image.open(out / "photo" / rec["mask"])) > 0, mask)
    assert got["prompts"][0]["presence"] == pytest.approx(float(seg.presence), abs=1e-6)

    clicks = tmp_path / "clicks"
    assert main(["segment", str(photo), "--model", str(export_dir), "--point", "30,40", "--out", str(clicks),
                 "--format", "json", "-q"]) == 0
    pred = p.predict(points=[[30, 40]])
    assert [i["iou"] for i in _result(clicks)["instances"]] == pytest.approx(pred.iou_scores.tolist(), abs=1e-6)


def test_rerun_skips_and_another_precision_differs(export_dir, photo, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["segment", str(photo), "--model", str(export_dir), "--text", "a dog", "--out", str(out)]
    assert main(base) == 0
    first = _result(out)
    assert first["options"]["model"]["fingerprint"] == OnnxPredictor(export_dir).fingerprint
    capsys.readouterr()
    assert main(base) == 0
    said = capsys.readouterr()
    assert "skip" in (said.err + said.out).lower() and _result(out) == first
    # the int8 vision encoder is another model for the skip check: refused without --force, done with it
    assert main([*base, "--fast", "int8"]) != 0
    assert "--force" in capsys.readouterr().err
    assert main([*base, "--fast", "int8", "--force"]) == 0
    assert _result(out)["options"]["model"]["fingerprint"] == OnnxPredictor(export_dir, precision="int8").fingerprint
    assert OnnxPredictor(export_dir, precision="int8").fingerprint != first["options"]["model"]["fingerprint"]


def test_fingerprint_survives_a_copy_and_tells_exports_apart(export_copy, export_dir):
    assert OnnxPredictor(export_copy).fingerprint == OnnxPredictor(export_dir).fingerprint
    manifest = json.loads((export_copy / "manifest.json").read_text())
    manifest["graphs"]["detector"]["fp32"]["sampled_sha256"] = "0" * 64  # as another export's detector would be
    (export_copy / "manifest.json").write_text(json.dumps(manifest))
    from sam3kit.onnx.manifest import read_manifest

    m = read_manifest(export_copy)
    assert m.fingerprint({"detector": "fp32"}) != read_manifest(export_dir).fingerprint({"detector": "fp32"})


def test_runs_without_torch(export_dir, photo, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "sam3kit", "segment", str(photo), "--model", str(export_dir),
                           "--text", "a dog", "--threshold", "0.0", "--out", str(out), "--format", "json,coco",
                           "--overlay", "-q"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = _result(out)
    p = OnnxPredictor(export_dir)
    p.set_image(load_image(photo))
    assert [i["score"] for i in got["instances"]] == pytest.approx(p.segment(text="a dog", threshold=0.0)
                                                                    .scores.tolist(), abs=1e-6)
    assert {"coco.json", "overlay.png"} <= set(got["files"])


@pytest.mark.parametrize("extra,match", [
    (["--image-size", "336"], "run at the size they were exported at"),
    (["--cache", "CACHE"], "does not apply to an ONNX export"),
    (["--dtype", "bf16"], "--dtype bf16: an ONNX export has fp32 graphs"),
    (["--fast", "int8", "--dtype", "fp16"], "pick different graphs"),
    (["--device", "mps"], "runs on cpu, cuda, cuda:N or auto"),
])
def test_flags_an_export_cannot_serve(export_dir, photo, tmp_path, capsys, extra, match):
    extra = [str(tmp_path / "c") if a == "CACHE" else a for a in extra]
    out = tmp_path / "out"
    assert main(["segment", str(photo), "--model", str(export_dir), "--text", "a dog", "--out", str(out),
                 *extra]) == 2
    assert match in capsys.readouterr().err
    assert not (out / "photo").exists()  # refused before any image


def test_everything_and_missing_variants_are_refused(export_dir, export_copy, photo, tmp_path, capsys):
    assert main(["segment", str(photo), "--model", str(export_dir), "--everything", "--out",
                 str(tmp_path / "a")]) == 2
    assert "--everything is not available on an ONNX export" in capsys.readouterr().err
    for f in export_copy.glob("*_fp16.onnx"):
        f.unlink()
    manifest = json.loads((export_copy / "manifest.json").read_text())
    for variants in manifest["graphs"].values():
        variants.pop("fp16", None)
    (export_copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["segment", str(photo), "--model", str(export_copy), "--text", "a dog", "--dtype", "fp16", "--out",
                 str(tmp_path / "b")]) == 2
    assert "was not exported in fp16" in capsys.readouterr().err


def test_overlong_text_stops_before_the_first_image(export_dir, photo, tmp_path, capsys):
    long_text = " ".join(["a very small red car"] * 10)  # over the 32 tokens of the context
    out = tmp_path / "out"
    assert main(["segment", str(photo), "--model", str(export_dir), "--text", long_text, "--out", str(out)]) == 2
    assert "tokens long, the model reads at most 32" in capsys.readouterr().err
    assert not (out / "photo").exists()
    assert main(["segment", str(photo), "--model", str(export_dir), "--text", long_text, "--truncate-text",
                 "--out", str(out), "-q"]) == 0
    p = OnnxPredictor(export_dir)
    p.set_image(load_image(photo))
    cut = p.segment(text=long_text, truncate_text=True)
    assert [i["score"] for i in _result(out)["instances"]] == pytest.approx(cut.scores.tolist(), abs=1e-6)
