"""``sam3kit segment`` with concept prompts, run as a subprocess on a tiny checkpoint: files, table, skip, force."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.io.writers import read_mask_png

TEXTS = ("red car", "dog")
SIZES = {"a": (60, 80), "b": (50, 40)}  # (H, W)


@pytest.fixture(scope="module")
def first_run(cli, tiny_checkpoint, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "out"
    r = cli("segment", images / "a.png", images / "b.jpg", images / "corrupt.png", images / "missing.png",
            "--model", tiny_checkpoint, "-t", TEXTS[0], "-t", TEXTS[1], "--threshold", "0", "--format", "all",
            "--overlay", "-o", out)
    return r, out


def test_outputs(first_run, tiny_checkpoint, images):
    r, out = first_run
    assert r.returncode == 2, r.stderr  # two inputs failed (user errors), the others were done
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("sam3kit: error:")]
    assert len(err) == 2 and any("corrupt.png" in e for e in err) and any("missing.png" in e for e in err)
    assert "4 images: 2 done, 2 failed; 40 masks" in r.stdout
    nq = Sam3Config.tiny().detector.decoder.num_queries
    predictor = sam3kit.ImagePredictor(sam3kit.load(tiny_checkpoint))
    for stem, (h, w) in SIZES.items():
        folder = out / stem
        res = json.loads((folder / "result.json").read_text())
        assert (res["image"]["width"], res["image"]["height"]) == (w, h)
        assert [p["label"] for p in res["prompts"]] == list(TEXTS)
        inst = res["instances"]
        assert len(inst) == 2 * nq and [i["id"] for i in inst] == list(range(2 * nq))
        assert sorted(res["files"]) == sorted([f"mask_{i:03d}.png" for i in range(2 * nq)] + ["coco.json",
                                                                                             "overlay.png"])
        assert sorted(p.name for p in folder.iterdir()) == sorted(res["files"] + ["result.json"])  # no temp files
        # the table shows every instance with its prompt's presence
        block = r.stdout[r.stdout.index(f"{stem}.{'png' if stem == 'a' else 'jpg'}  {w}x{h}"):]
        rows = [line.split() for line in block.splitlines()[2:2 + 2 * nq]]
        assert [int(row[0]) for row in rows] == list(range(2 * nq))
        assert rows[0][-7] == f"{res['prompts'][0]['presence']:.2f}" and rows[0][-6] == f"{inst[0]['score']:.2f}"
        # PNG (white on black) == COCO RLE decoded by pycocotools == the Python API's masks, in the API's order
        pngs = []
        for i in inst:
            with Image.open(folder / i["mask"]) as im:
                assert im.mode == "L" and im.size == (w, h) and set(np.unique(np.asarray(im))) <= {0, 255}
            png = read_mask_png(folder / i["mask"])
            rle = dict(i["rle"], counts=i["rle"]["counts"].encode())
            assert np.array_equal(mask_utils.decode(rle).astype(bool), png)
            assert i["area"] == int(png.sum())
            pngs.append(png)
        predictor.set_image(images / f"{stem}.{'png' if stem == 'a' else 'jpg'}")
        for k, text in enumerate(TEXTS):
            api = predictor.segment(text=text, threshold=0.0)
            # defect 3: one order for both: mask_{k * nq + i:03d}.png is masks[i] of the k-th prompt
            for i in range(nq):
                assert np.array_equal(read_mask_png(folder / f"mask_{k * nq + i:03d}.png"), api.masks[i])
            got = [p for p, i in zip(pngs, inst) if i["prompt"] == k]
            assert len(got) == nq and all(np.array_equal(a, b) for a, b in zip(api.masks, got))
            assert res["prompts"][k]["presence"] == pytest.approx(api.presence, abs=1e-6)
            scores = [i["score"] for i in inst if i["prompt"] == k]
            assert scores == pytest.approx(api.scores.tolist(), abs=1e-6)
            assert [i["query_index"] for i in inst if i["prompt"] == k] == api.query_indices.tolist()
        # COCO document
        coco = COCO(str(folder / "coco.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(TEXTS)
        anns = coco.loadAnns(coco.getAnnIds())
        assert len(anns) == 2 * nq
        assert all(np.array_equal(coco.annToMask(a).astype(bool), p) for a, p in zip(anns, pngs))
        x1, y1, x2, y2 = inst[0]["box"]
        assert anns[0]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
        # overlay: the image's size, coloured where masks are
        with Image.open(folder / "overlay.png") as im:
            assert im.size == (w, h) and im.mode == "RGB"


def test_rerun_skips_then_force(first_run, cli, tiny_checkpoint, images):
    _, out = first_run
    common = [images / "a.png", images / "b.jpg", "--model", tiny_checkpoint, "-t", TEXTS[0], "-t", TEXTS[1],
              "--format", "all", "--overlay", "-o", out]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    r = cli("segment", *common, "--threshold", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("done already") == 2 and "0 done, 2 skipped (complete)" in r.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # other options: refused without --force, nothing touched
    r = cli("segment", *common, "--threshold", "0.27")
    assert r.returncode == 2 and r.stdout.count("done already") == 0
    assert r.stderr.count("--force") >= 2 and "Traceback" not in r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # with --force: redone, the earlier run's extra masks removed
    r = cli("segment", *common, "--threshold", "0.27", "--force", "-q")
    assert r.returncode == 0, r.stderr
    assert "2 done" in r.stdout and "id  prompt" not in r.stdout  # -q: no table
    for stem in SIZES:
        res = json.loads((out / stem / "result.json").read_text())
        assert res["options"]["threshold"] == 0.27
        assert all(i["score"] > 0.27 for i in res["instances"])
        assert sorted(p.name for p in (out / stem).iterdir()) == sorted(res["files"] + ["result.json"])
