"""``sam3kit segment`` as a new user meets it (issue 12), run as a subprocess on the tiny checkpoint: outputs checked
before any work, overlong texts, negative coordinates, stable output folders, the content-keyed resume check,
folder runs (recursion, hidden files, merged COCO, id maps, the encoding cache, threads), one-line errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from sam3kit.io.writers import read_mask_png

LONG_TEXT = " ".join(["word"] * 40) + " tail-end"


def _one_line(r, code=2):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sam3kit: error:"), r.stderr
    return lines[0]


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_outputs_are_checked_before_the_model_is_loaded(cli, images, tmp_path):
    """Defect 4: an --out (or --cache) that cannot be written stops the command before loading (here the model
    does not even exist: loading it first would have given another error)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    for flag in ("--out", "--cache"):
        r = cli("segment", images / "a.png", "-t", "dog", "--model", tmp_path / "no-such-model", flag,
                blocker / "sub")
        line = _one_line(r)
        assert f"{flag} {blocker / 'sub'} cannot be created" in line and "no-such-model" not in line
    assert _tree(tmp_path) == ["blocker"]


def test_overlong_text_stops_once_or_is_cut_on_request(cli, tiny_checkpoint, images, tmp_path):
    """Defect 5: one error for the whole job (not one per image), quoting a short prefix; --truncate-text cuts."""
    common = ["segment", images / "a.png", images / "b.jpg", "--model", tiny_checkpoint, "-t", LONG_TEXT,
              "--threshold", "0"]
    line = _one_line(cli(*common, "-o", tmp_path / "refused"))
    assert "tokens long, the model reads at most 32" in line and "--truncate-text" in line
    assert repr(LONG_TEXT[:40] + "…") in line and "tail-end" not in line
    assert not (tmp_path / "refused").exists()
    r = cli(*common, "--truncate-text", "-o", tmp_path / "cut")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("sam3kit: warning:")]
    assert len(warnings) == 1 and "only the first 32 are used" in warnings[0], r.stderr  # once, not per image
    assert all((tmp_path / "cut" / s / "result.json").is_file() for s in ("a", "b"))


@pytest.mark.parametrize("argv", [["--box", "-5,10,50,50"], ["--box=-5,10,50,50"], ["-b", "-5,10,50,50"],
                                  ["-p", "-3,4"], ["--point", "-3,4,1"]])
def test_negative_coordinates_reach_the_image_check(cli, tiny_checkpoint, images, tmp_path, argv):
    """Defect 8: the value is taken as a box / point, and the user learns it lies outside the image."""
    line = _one_line(cli("segment", images / "a.png", "--model", tiny_checkpoint, *argv, "-o", tmp_path / "out"))
    assert "lies outside the 80x60 image" in line and "expected one argument" not in line


def test_output_folders_are_stable_and_force_keeps_other_images(cli, tiny_checkpoint, images, tmp_path):
    """Defect 6: folders follow the path below the folder argument; a subset re-run finds its finished images;
    two files with one name are refused before any work; --force never replaces another image's results."""
    top = tmp_path / "top"
    for rel, src in (("x/a.png", "a.png"), ("y/a.png", "b.jpg"), ("y/c.png", "a.png")):
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.open(images / src).convert("RGB").save(top / rel)
    common = ["--model", tiny_checkpoint, "-t", "dog", "--format", "png"]
    line = _one_line(cli("segment", top / "x/a.png", top / "y/a.png", *common, "-o", tmp_path / "clash"))
    assert f"{top / 'x/a.png'} and {top / 'y/a.png'} would both write to the output folder 'a'" in line
    assert not (tmp_path / "clash").exists()
    r = cli("segment", top, *common, "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert {p.parent.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("result.json")} \
        == {"x/a", "y/a", "y/c"}
    r = cli("segment", str(top / "*" / "a.png"), *common, "-o", tmp_path / "out")  # a subset of the same tree
    assert r.returncode == 0, r.stderr
    assert "0 done, 2 skipped (complete)" in r.stdout
    # another image of the same name into the same folder: refused even with --force, nothing touched
    assert cli("segment", top / "y/a.png", *common, "-o", tmp_path / "single").returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "single").rglob("*") if p.is_file()}
    line = _one_line(cli("segment", top / "x/a.png", *common, "--force", "-o", tmp_path / "single"))
    assert "holds the results of another image" in line and str(top / "y/a.png") in line
    assert {p: p.read_bytes() for p in (tmp_path / "single").rglob("*") if p.is_file()} == before


def test_resume_keys_on_content_and_says_what_differs(cli, tiny_checkpoint, images, tmp_path):
    img = tmp_path / "a.png"
    shutil.copy(images / "a.png", img)
    common = [img, "-t", "dog", "--format", "png", "-o", tmp_path / "out"]
    assert cli("segment", *common, "--model", tiny_checkpoint).returncode == 0
    os.utime(img, ns=(10**9, 10**9))  # touched, same bytes; and the weights named through their file
    r = cli("segment", *common, "--model", tiny_checkpoint / "model.safetensors")
    assert r.returncode == 0, r.stderr
    assert "done already" in r.stdout and "0 done, 1 skipped (complete)" in r.stdout
    line = _one_line(cli("segment", *common, "--model", tiny_checkpoint, "--threshold", "0.3"))
    assert "option --threshold differs: 0.5 before, 0.3 now" in line and "--force" in line


def test_folder_run(cli, tiny_checkpoint, images, tmp_path):
    """Recursion by default with hidden files skipped and counted, OUT/coco.json merging the images with distinct
    ids, id maps, --threads, and --cache: a second run with another text reads the encodings."""
    from sam3kit.io.writers import read_id_map_png

    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    (src / ".thumbs").mkdir()
    shutil.copy(images / "a.png", src / "a.png")
    Image.open(images / "b.jpg").convert("RGB").save(src / "sub" / "b.png")
    shutil.copy(images / "a.png", src / ".hidden.png")
    shutil.copy(images / "a.png", src / ".thumbs" / "t.png")
    (src / "notes.txt").write_text("x")
    out, cache = tmp_path / "out", tmp_path / "cache"
    r = cli("segment", src, "--model", tiny_checkpoint, "-t", "red car", "--threshold", "0", "--format", "all",
            "--id-map", "--threads", "1", "--cache", cache, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "ignored in folders: 2 hidden, 1 not an image" in r.stdout
    assert "encodings: 0 read from the cache, 2 computed" in r.stdout
    # merged COCO: both images, distinct ids, each annotation on its own image and equal to that image's PNGs
    coco = COCO(str(out / "coco.json"))
    ims = coco.loadImgs(coco.getImgIds())
    assert [(i["id"], i["file_name"]) for i in ims] == [(1, "a.png"), (2, "sub/b.png")]
    for im, folder in zip(ims, (out / "a", out / "sub" / "b")):
        res = json.loads((folder / "result.json").read_text())
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]]))
        assert len(anns) == len(res["instances"]) > 0
        pngs = [read_mask_png(folder / i["mask"]) for i in res["instances"]]
        assert all(np.array_equal(coco.annToMask(a).astype(bool), p) for a, p in zip(anns, pngs))
        ids = read_id_map_png(folder / "id_map.png")  # 0 background, i + 1 = instance i (highest score on top)
        expected = np.zeros(ids.shape, np.uint16)
        for k in np.argsort([i["score"] for i in res["instances"]], kind="stable"):
            expected[pngs[k]] = k + 1
        assert ids.dtype == np.uint16 and np.array_equal(ids, expected)
    assert len({a["id"] for a in coco.loadAnns(coco.getAnnIds())}) == len(coco.getAnnIds())
    r = cli("segment", src, "--model", tiny_checkpoint, "-t", "dog", "--cache", cache, "-o", tmp_path / "out2", "-v")
    assert r.returncode == 0, r.stderr
    assert "encodings: 2 read from the cache, 0 computed" in r.stdout and "encoding read from the cache" in r.stderr


def test_checkpoint_mismatch_is_one_line(cli, tiny_checkpoint, images, tmp_path):
    """Defect 11 (CLI side): a checkpoint missing a tensor is one line; -v adds the details."""
    from safetensors.torch import load_file, save_file

    bad = shutil.copytree(tiny_checkpoint, tmp_path / "bad")
    tensors = load_file(bad / "model.safetensors")
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, bad / "model.safetensors")
    argv = ["segment", images / "a.png", "-t", "dog", "--model", bad, "-o", tmp_path / "out"]
    _one_line(cli(*argv))
    r = cli("-v", *argv)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("  ")]) >= 1
