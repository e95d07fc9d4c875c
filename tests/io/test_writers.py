"""Atomic no-overwrite writes, mask PNGs, COCO RLE, instance records and COCO documents."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from sam3kit.errors import InputError, OutputError
from sam3kit.io.rle import decode_rle, encode_rle, rle_area, rle_bbox
from sam3kit.io.writers import (atomic_write, coco_document, id_map, json_text, mask_box, merge_coco, predict_records,
                                read_id_map_png, read_mask_png, segment_records, write_id_map_png, write_json,
                                write_mask_png)
from sam3kit.pipelines.results import PredictResult, SegmentResult


def test_atomic_write_and_no_overwrite(tmp_path):
    p = tmp_path / "sub" / "dir" / "f.bin"
    atomic_write(p, b"one")
    assert p.read_bytes() == b"one" and os.listdir(p.parent) == ["f.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
    with pytest.raises(OutputError, match="exists already"):
        atomic_write(p, b"two")
    assert p.read_bytes() == b"one" and os.listdir(p.parent) == ["f.bin"]  # untouched, no temp file left
    atomic_write(p, b"three", overwrite=True)
    assert p.read_bytes() == b"three"

    def failing(fh):
        fh.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "g.bin", failing)
    assert not (tmp_path / "g.bin").exists() and sorted(os.listdir(tmp_path)) == ["sub"]


def test_atomic_write_without_hard_links(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    atomic_write(tmp_path / "f", b"a")
    with pytest.raises(OutputError):
        atomic_write(tmp_path / "f", b"b")
    assert (tmp_path / "f").read_bytes() == b"a" and os.listdir(tmp_path) == ["f"]


def test_unwritable_folder_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write(tmp_path / "file" / "inside.png", b"x")


def test_mask_png_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    m = rng.random((37, 53)) > 0.6
    write_mask_png(tmp_path / "m.png", m)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "L" and im.size == (53, 37)
        a = np.asarray(im)
    assert set(np.unique(a)) == {0, 255} and np.array_equal(a == 255, m)  # white object on black
    assert np.array_equal(read_mask_png(tmp_path / "m.png"), m)
    with pytest.raises(InputError):
        write_mask_png(tmp_path / "bad.png", np.zeros((2, 3, 4), bool))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_roundtrip_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 60, 2)
    for m in (rng.random((h, w)) > rng.random(), np.zeros((h, w), bool), np.ones((h, w), bool)):
        rle = encode_rle(m)
        assert rle["size"] == [h, w] and isinstance(rle["counts"], str)
        json.dumps(rle)
        assert np.array_equal(decode_rle(rle), m)
        ref = mask_utils.decode({"size": [int(h), int(w)], "counts": rle["counts"].encode()}).astype(bool)
        assert np.array_equal(ref, m)
        assert rle_area(rle) == int(m.sum())
        box = mask_box(m)
        if box is None:
            assert rle_bbox(rle) == [0.0, 0.0, 0.0, 0.0]
        else:
            x1, y1, x2, y2 = box
            assert rle_bbox(rle) == [x1, y1, x2 - x1, y2 - y1]
    # uncompressed RLE (list counts, column-major runs starting with zeros) as COCO ground truth has it
    assert np.array_equal(decode_rle({"size": [2, 3], "counts": [1, 2, 3]}), np.array([[0, 1, 0], [1, 0, 0]], bool))


def test_write_json_numpy(tmp_path):
    write_json(tmp_path / "r.json", {"a": np.float32(0.5), "b": np.arange(3), "c": np.int64(7), "t": "bus é"})
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == {"a": 0.5, "b": [0, 1, 2], "c": 7,
                                                                             "t": "bus é"}


def _segment_result(h=20, w=30):
    m = np.zeros((3, h, w), bool)
    m[0, 2:5, 3:9] = True
    m[1, 10:, 20:] = True
    return SegmentResult(masks=m, boxes=np.array([[3, 2, 9, 5], [20, 10, 30, 20], [0, 0, 1, 1]], np.float32),
                         scores=np.array([0.6, 0.9, 0.6], np.float32), presence=0.97,
                         query_indices=np.array([3, 8, 11]))


def test_records_and_coco_document():
    seg = _segment_result()
    recs = segment_records(seg, "bus", 0)
    assert [r["query_index"] for r in recs] == [3, 8, 11]  # the result's order: record i is masks[i]
    assert [r["index"] for r in recs] == [0, 1, 2]
    assert [r["area"] for r in recs] == [18, 100, 0] and recs[1]["box"] == [20.0, 10.0, 30.0, 20.0]
    m = np.zeros((3, 20, 30), bool)
    m[:, 4:8, 5:7] = True
    m[2, 0, 0] = True
    pred = PredictResult(masks=m, iou_scores=np.array([0.2, 0.9, 0.5], np.float32), object_score=0.8,
                         low_res_logits=np.zeros((3, 8, 8), np.float32), best=1)
    precs = predict_records(pred, "points", 1, indices=[1, 2])
    assert [r["mask_index"] for r in precs] == [1, 2] and [r["best"] for r in precs] == [True, False]
    assert precs[0]["box"] == [5.0, 4.0, 7.0, 8.0] and precs[1]["box"] == [0.0, 0.0, 7.0, 8.0]
    allr = recs + precs
    for i, r in enumerate(allr):
        r["id"] = i
    doc = coco_document("img.jpg", 30, 20, allr)
    json.dumps(doc)
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["bus", "points"]
    anns = coco.loadAnns(coco.getAnnIds())
    masks = [seg.masks[0], seg.masks[1], seg.masks[2], m[1], m[2]]
    for a, mk, r in zip(anns, masks, allr):
        assert np.array_equal(coco.annToMask(a).astype(bool), mk) and a["area"] == mk.sum()
        assert a["score"] == (r["score"] if r["score"] is not None else r["iou"])
    assert anns[1]["bbox"] == [20.0, 10.0, 10.0, 10.0] and anns[2]["bbox"] == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(InputError):
        coco_document("img.jpg", 30, 20, segment_records(seg, "bus", 0, with_rle=False))


def _strict(text):
    def refuse(name):
        raise ValueError(f"{name} is not strict JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict(tmp_path, caplog):
    """Defect 10: NaN and infinities become null (strict parsers refuse bare NaN), and a warning says where."""
    obj = {"presence": float("nan"), "scores": np.array([0.5, np.inf], np.float32), "n": np.float64(-np.inf),
           "ok": [1, 2.5, None, True]}
    with caplog.at_level("WARNING", logger="sam3kit.io.writers"):
        write_json(tmp_path / "r.json", obj)
    assert _strict((tmp_path / "r.json").read_text()) == {"presence": None, "scores": [0.5, None], "n": None,
                                                          "ok": [1, 2.5, None, True]}
    assert "3 values are not finite" in caplog.text and "presence, scores[1], n" in caplog.text
    assert _strict(json_text({"a": 1.0})) == {"a": 1.0}
    with pytest.raises(TypeError):
        json_text({"a": object()})


def test_id_map_png_roundtrip(tmp_path):
    masks = np.zeros((3, 5, 7), bool)
    masks[0, :3, :4] = True
    masks[1, 2:, 3:] = True  # overlaps mask 0 at [2, 3]
    ids = id_map(masks, (5, 7), priority=[0.9, 0.2, None])
    assert ids.dtype == np.uint16 and ids[2, 3] == 1 and ids[4, 6] == 2 and ids[4, 0] == 0
    assert id_map(masks, (5, 7))[2, 3] == 2  # no priority: the later instance
    write_id_map_png(tmp_path / "ids.png", ids)
    with Image.open(tmp_path / "ids.png") as im:
        assert im.mode.startswith("I") and im.size == (7, 5)
    assert np.array_equal(read_id_map_png(tmp_path / "ids.png"), ids)
    big = np.zeros((5, 7), np.uint16)
    big[0, 0] = 65535  # the top of the 16-bit range survives
    write_id_map_png(tmp_path / "big.png", big)
    assert read_id_map_png(tmp_path / "big.png")[0, 0] == 65535
    with pytest.raises(InputError):
        id_map(masks, (4, 7))


def test_merge_coco():
    seg = _segment_result()
    recs = segment_records(seg, "bus", 0)
    docs = [coco_document("a.png", 30, 20, recs[:2]), coco_document("a.png", 30, 20,
                                                                    [dict(recs[2], label="car"), recs[0]])]
    merged = merge_coco(docs, ["x/a.png", "y/a.png"])
    assert [(i["id"], i["file_name"]) for i in merged["images"]] == [(1, "x/a.png"), (2, "y/a.png")]
    assert [c["name"] for c in merged["categories"]] == ["bus", "car"]
    anns = merged["annotations"]
    assert [a["id"] for a in anns] == [1, 2, 3, 4] and [a["image_id"] for a in anns] == [1, 1, 2, 2]
    assert [a["category_id"] for a in anns] == [1, 1, 2, 1]
    coco = COCO()
    coco.dataset = merged
    coco.createIndex()
    assert np.array_equal(coco.annToMask(anns[2]).astype(bool), seg.masks[2])
    with pytest.raises(InputError, match="file names"):
        merge_coco(docs, ["one.png"])
