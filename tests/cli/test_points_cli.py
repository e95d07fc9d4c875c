"""``sam3kit segment --point``: interactive masks with IoU scores and object presence, as a subprocess."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

import sam3kit
from sam3kit.io.rle import decode_rle
from sam3kit.io.writers import read_mask_png


def test_one_click_gives_three_masks(cli, tiny_checkpoint, images, tmp_path):
    out = tmp_path / "out"
    r = cli("segment", images / "a.png", "--model", tiny_checkpoint, "-p", "40,30", "--format", "all", "--overlay",
            "-o", out)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "a" / "result.json").read_text())
    (prompt,) = res["prompts"]
    assert prompt["kind"] == "interactive" and prompt["points"] == [[40.0, 30.0]] and prompt["multimask"]
    inst = res["instances"]
    assert [i["mask_index"] for i in inst] == [0, 1, 2] and [i["id"] for i in inst] == [0, 1, 2]
    assert [i["iou"] for i in inst] == pytest.approx(prompt["iou_scores"])
    best = int(np.argmax(prompt["iou_scores"]))
    assert [i["best"] for i in inst] == [k == best for k in range(3)]
    # the same masks as the Python API
    predictor = sam3kit.ImagePredictor(sam3kit.load(tiny_checkpoint))
    predictor.set_image(images / "a.png")
    api = predictor.predict(points=[[40, 30]])
    assert prompt["object_score"] == pytest.approx(api.object_score, abs=1e-6)
    assert prompt["iou_scores"] == pytest.approx(api.iou_scores.tolist(), abs=1e-6)
    coco = COCO(str(out / "a" / "coco.json"))
    for k, i in enumerate(inst):
        png = read_mask_png(out / "a" / i["mask"])
        assert np.array_equal(png, api.masks[k]) and np.array_equal(decode_rle(i["rle"]), png)
        assert np.array_equal(coco.annToMask(coco.loadAnns([k + 1])[0]).astype(bool), png)
    # table: one row per mask with its IoU (* = best) and the object score, both named and explained
    rows = [line.split() for line in r.stdout.splitlines() if line.strip().split(" ")[0] in {"0", "1", "2"}]
    assert len(rows) == 3 and all(row[1] == "points" and row[2] == f"{api.object_score:.2f}" for row in rows)
    assert rows[best][3] == f"{api.iou_scores[best]:.2f}*"
    assert "object score" in r.stdout and "presence" not in r.stdout and "* = highest" in r.stdout


def test_clicks_box_and_best(cli, tiny_checkpoint, images, tmp_path):
    out = tmp_path / "out"
    r = cli("segment", images / "a.png", images / "b.jpg", "--model", tiny_checkpoint, "-p", "20,20", "-p", "30,25,0",
            "-b", "5,5,35,40", "--best", "--format", "png", "-o", out)
    assert r.returncode == 0, r.stderr
    for stem in ("a", "b"):
        res = json.loads((out / stem / "result.json").read_text())
        (prompt,) = res["prompts"]
        assert prompt["box"] == [5.0, 5.0, 35.0, 40.0] and prompt["point_labels"] == [1, 0]
        (only,) = res["instances"]
        assert only["mask_index"] == int(np.argmax(prompt["iou_scores"])) and "rle" not in only  # png only
        assert sorted(p.name for p in (out / stem).iterdir()) == ["mask_000.png", "result.json"]
