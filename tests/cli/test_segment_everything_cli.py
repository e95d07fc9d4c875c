"""``sam3kit segment --everything``: every mask without a prompt, written as the other segment modes write theirs
(mask PNGs, result.json, coco.json, overlay, id map; atomic, resumable), and its bad input refused with exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

import sam3kit
from sam3kit.cli import main
from sam3kit.io.rle import decode_rle
from sam3kit.io.writers import read_id_map_png, read_mask_png

# the tiny checkpoint's random head gives masks that span the image: with NMS off (1.0) every candidate that
# passes the filters is kept, so there are several masks to write
FLAGS = ["--everything", "--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh", "0",
         "--box-nms-thresh", "1"]


def test_everything_writes_what_the_api_returns(cli, tiny_checkpoint, images, tmp_path):
    out = tmp_path / "out"
    r = cli("segment", images / "a.png", "--model", tiny_checkpoint, *FLAGS, "--format", "all", "--overlay",
            "--id-map", "-o", out)
    assert r.returncode == 0, r.stderr
    folder = out / "a"
    res = json.loads((folder / "result.json").read_text())
    (prompt,) = res["prompts"]
    assert prompt["kind"] == "everything" and prompt["options"]["points_per_side"] == 4
    assert prompt["options"]["box_nms_thresh"] == 1.0 and prompt["options"]["pred_iou_thresh"] == 0.0
    inst = res["instances"]
    predictor = sam3kit.ImagePredictor(sam3kit.load(tiny_checkpoint))
    predictor.set_image(images / "a.png")
    api = predictor.segment_everything(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0,
                                       box_nms_thresh=1.0)
    assert len(inst) == len(api) == prompt["found"] > 3
    assert [i["id"] for i in inst] == list(range(len(api)))
    coco = COCO(str(folder / "coco.json"))
    for k, (i, a) in enumerate(zip(inst, api)):
        png = read_mask_png(folder / i["mask"])
        assert np.array_equal(png, a["segmentation"]) and np.array_equal(decode_rle(i["rle"]), png)
        assert np.array_equal(coco.annToMask(coco.loadAnns([k + 1])[0]).astype(bool), png)
        assert i["iou"] == pytest.approx(a["predicted_iou"], abs=1e-6) and i["area"] == a["area"]
        assert i["stability_score"] == pytest.approx(a["stability_score"], abs=1e-6)
        assert i["point"] == pytest.approx(a["point_coords"][0]) and i["crop_box"] == [0, 0, 80, 60]
        x, y, w, h = a["bbox"]  # SAM 1's inclusive box -> the pixel edges the other modes write
        assert i["box"] == [x, y, x + w + 1, y + h + 1]
        assert coco.loadAnns([k + 1])[0]["bbox"] == [x, y, w + 1, h + 1]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["everything"]
    overlay = np.asarray(Image.open(folder / "overlay.png"))
    assert overlay.shape == (60, 80, 3) and not np.array_equal(overlay, np.asarray(Image.open(images / "a.png")))
    assert read_id_map_png(folder / "id_map.png").max() >= 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(res["files"] + ["result.json"])  # no partial marker
    rows = [line.split() for line in r.stdout.splitlines() if line.strip().split(" ")[0].isdigit()]
    assert len(rows) == len(api) and rows[0][1] == f"{api[0]['predicted_iou']:.3f}"
    assert "(4x4 clicks)" in r.stdout and "predicted IoU" in r.stdout

    # the same command again: done already; other generator options: the earlier outputs do not match
    again = cli("segment", images / "a.png", "--model", tiny_checkpoint, *FLAGS, "--format", "all", "--overlay",
                "--id-map", "-o", out)
    assert again.returncode == 0 and "done already" in again.stdout, again.stderr
    other = cli("segment", images / "a.png", "--model", tiny_checkpoint, *FLAGS[:-2], "--box-nms-thresh", "0.7",
                "--crop-n-layers", "1", "--format", "png", "--force", "-o", out)
    assert other.returncode == 0, other.stderr
    res2 = json.loads((folder / "result.json").read_text())
    assert res2["prompts"][0]["options"]["crop_n_layers"] == 1
    assert len(res2["instances"]) < len(inst)  # NMS on: fewer masks, and the old mask files are gone
    assert sorted(p.name for p in folder.iterdir()) == sorted(res2["files"] + ["result.json"])
    crops = {tuple(i["crop_box"]) for i in res2["instances"]}
    assert crops <= {(0, 0, 80, 60), (0, 0, 50, 40), (0, 20, 50, 40), (30, 0, 50, 40), (30, 20, 50, 40)}


@pytest.mark.parametrize("argv, words", [
    (["--everything", "--points-per-side", "0"], "--points-per-side must be in [1, 128]"),
    (["--everything", "--points-per-side", "129"], "--points-per-side must be in [1, 128]"),
    (["--everything", "--points-per-batch", "0"], "--points-per-batch must be in [1, 1024]"),
    (["--everything", "--pred-iou-thresh", "1.5"], "--pred-iou-thresh must be in [0, 1]"),
    (["--everything", "--stability-score-thresh", "-0.1"], "--stability-score-thresh must be in [0, 1]"),
    (["--everything", "--box-nms-thresh", "2"], "--box-nms-thresh must be in [0, 1]"),
    (["--everything", "--crop-nms-thresh", "nan"], "--crop-nms-thresh must be in [0, 1]"),
    (["--everything", "--crop-n-layers", "5"], "--crop-n-layers must be in [0, 3]"),
    (["--everything", "--min-mask-region-area", "-3"], "--min-mask-region-area must be >= 0"),
    (["--points-per-side", "8"], "--points-per-side is an option of --everything"),
    (["--single-mask"], "--single-mask is an option of --everything"),
    (["--everything", "-t", "dog"], "it does not take --text"),
    (["--everything", "-p", "10,10"], "it does not take --point"),
    (["--everything", "-b", "1,1,20,20"], "it does not take --box"),
])
def test_bad_input_exits_2_before_any_work(images, tmp_path, capsys, argv, words):
    out = tmp_path / "out"
    code = main(["segment", str(images / "a.png"), "--model", str(tmp_path / "no-such-model"), *argv, "-o",
                 str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("sam3kit: error:") and words in err[0], err
    assert not out.exists()  # refused before the model (which does not exist) and before any output


def test_bad_number_is_an_argparse_error(images, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["segment", str(images / "a.png"), "--model", str(tmp_path), "--everything", "--points-per-side",
              "many"])
    assert e.value.code == 2 and "--points-per-side: invalid int value: 'many'" in capsys.readouterr().err
