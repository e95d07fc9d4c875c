"""``sam3kit.batch.run`` on the local engine: the rows against ``ImagePredictor.segment`` on each image, one
encoding per image for all prompts, the rows of bad images, determinism across workers and batch sizes, resuming,
and ``merge`` into COCO."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from batch_helpers import FOUND, NOT_FOUND, THRESHOLD, assert_rows_close, job_rows

import sam3kit
from sam3kit.batch import BatchOptions, merge, run
from sam3kit.batch.table import COLUMNS
from sam3kit.errors import InputError
from sam3kit.io.rle import decode_rle

OPTIONS = BatchOptions(texts=(FOUND, NOT_FOUND), threshold=THRESHOLD, shard_size=4)


@pytest.fixture(scope="module")
def model(batch_checkpoint):
    return sam3kit.load(batch_checkpoint)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, batch_images, batch_checkpoint):
    """One uninterrupted run of the module's job (the rows other runs are compared with)."""
    out = tmp_path_factory.mktemp("reference")
    summary = run(batch_images, batch_checkpoint, out, OPTIONS, progress=False)
    return out, summary, job_rows(out)


def test_rows_are_what_the_predictor_gives_each_image(reference, model):
    out, summary, rows = reference
    assert summary.images == 9 and summary.shards == 3 and summary.written == 3 and summary.complete
    assert tuple(rows.column_names) == COLUMNS
    r = rows.to_pylist()
    bad = [x for x in r if x["error"] is not None]
    assert [x["path"].rsplit("/", 2)[-2:] for x in bad] == [["sub", "corrupt.png"]]  # one row: the image's error
    assert bad[0]["prompt_index"] is None and bad[0]["width"] is None and "not an image" in bad[0]["error"]
    predictor = sam3kit.ImagePredictor(model)
    good = sorted({x["image_id"] for x in r} - {bad[0]["image_id"]})
    assert len(good) == 8
    found = 0
    for image_id in good:
        mine = [x for x in r if x["image_id"] == image_id]
        predictor.set_image(mine[0]["path"])
        h, w = predictor.image_sizes[0]
        assert {(x["width"], x["height"]) for x in mine} == {(w, h)}
        for k, text in enumerate((FOUND, NOT_FOUND)):
            want = predictor.segment(text=text, threshold=THRESHOLD)
            got = [x for x in mine if x["prompt_index"] == k]
            assert {x["prompt"] for x in got} == {text}
            assert got[0]["presence"] == pytest.approx(want.presence, abs=1e-6)
            if len(want) == 0:  # "nothing found": one row without an instance
                assert len(got) == 1 and got[0]["instance"] is None and got[0]["rle"] is None
                continue
            assert [x["instance"] for x in got] == list(range(len(want)))
            for x, mask, box, score in zip(got, want.masks, want.boxes, want.scores):
                assert x["score"] == pytest.approx(float(score), abs=1e-6)
                np.testing.assert_allclose(x["box"], box, atol=1e-4)
                m = decode_rle(x["rle"])
                assert x["rle"]["size"] == [h, w] and np.array_equal(m, mask) and x["area"] == int(mask.sum())
                found += 1
    # the biased tiny model: the first text finds something in every image, the second nothing
    assert found == summary.instances == 8
    assert sum(1 for x in r if x["instance"] is None and x["error"] is None) == 8


def test_one_encoding_per_image_and_each_text_encoded_once(tmp_path, batch_images, model, monkeypatch):
    """All prompts answered on one ViT pass per image: with a batch of 3, the ViT sees each decodable image once
    (batches of up to 3, within a shard), and the text encoder runs once per text for the whole job."""
    vit, texts = [], []
    trunk, encode_text = model.image_trunk, model.encode_text
    monkeypatch.setattr(model, "image_trunk", lambda px: vit.append(px.shape[0]) or trunk(px))
    monkeypatch.setattr(model, "encode_text", lambda ids, pad: texts.append(ids.shape) or encode_text(ids, pad))
    opts = BatchOptions(texts=(FOUND, NOT_FOUND, "cat"), threshold=THRESHOLD, shard_size=4, batch_size=3)
    s = run(batch_images, model, tmp_path, opts, progress=False)
    assert s.processed == 9 and s.errors == 1
    assert sum(vit) == 8 and max(vit) == 3  # 8 decodable images; shards of 4 -> batches 3+1 (one without corrupt)
    assert len(texts) == 3


def test_workers_and_batches_give_the_same_rows(tmp_path, batch_images, model, reference):
    """Two model threads: the same rows, bit for bit (each unit is computed alone). Batches of 3 images: the same
    rows up to the rounding of batched matrix products (the masks and instances are the same)."""
    two = run(batch_images, model, tmp_path / "a", dataclasses.replace(OPTIONS, workers=2), progress=False)
    assert two.placement["workers"] == 2
    assert job_rows(tmp_path / "a").equals(reference[2])
    run(batch_images, model, tmp_path / "b", dataclasses.replace(OPTIONS, batch_size=3), progress=False)
    assert_rows_close(job_rows(tmp_path / "b"), reference[2], atol=1e-5)


def test_progress_counts_every_image_and_a_rerun_does_nothing(tmp_path, batch_images, model):
    seen = []
    s = run(batch_images, model, tmp_path, OPTIONS, progress=seen.append)
    assert sum(seen) == 9 and s.written == 3
    seen.clear()
    again = run(batch_images, model, tmp_path, OPTIONS, progress=seen.append)
    assert again.written == 0 and again.kept == 3 and again.complete and seen == []
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["status"] == "complete" and m["model"]["fingerprint"] == model.fingerprint


def test_a_lost_shard_is_recomputed_alone(tmp_path, batch_images, batch_checkpoint, reference):
    run(batch_images, batch_checkpoint, tmp_path, OPTIONS, progress=False)
    (tmp_path / "shards" / "shard-00001.parquet").unlink()
    s = run(batch_images, batch_checkpoint, tmp_path, OPTIONS, progress=False)
    assert (s.kept, s.written, s.processed) == (2, 1, 4)
    assert job_rows(tmp_path).equals(reference[2])


def test_exemplar_boxes_per_image(tmp_path, batch_images, model):
    paths = sorted(p for p in batch_images.rglob("img*.png"))
    boxes = {str(paths[0]): [[2, 2, 20, 20]], str(paths[1]): [[0, 0, 10, 12], [5, 5, 15, 15, 0]]}
    (tmp_path / "ex.json").write_text(json.dumps(boxes))
    opts = BatchOptions(exemplars=str(tmp_path / "ex.json"), threshold=0.0, shard_size=4)
    run([str(p) for p in paths[:3]], model, tmp_path / "out", opts, progress=False)
    r = job_rows(tmp_path / "out").to_pylist()
    predictor = sam3kit.ImagePredictor(model)
    for p, bx in boxes.items():
        predictor.set_image(p)
        want = predictor.segment(boxes=[b[:4] for b in bx], box_labels=[b[4] if len(b) == 5 else 1 for b in bx],
                                 threshold=0.0)
        got = [x for x in r if x["path"] == p]
        assert [x["prompt"] for x in got] == ["exemplars"] * len(want)
        assert np.allclose([x["score"] for x in got], want.scores, atol=1e-6)
    third = [x for x in r if x["path"] == str(paths[2])]
    assert len(third) == 1 and "no exemplar boxes for this image" in third[0]["error"]


def test_merge_writes_one_coco_file(tmp_path, reference):
    from pycocotools.coco import COCO

    out, summary, rows = reference
    m = merge(out, tmp_path / "all.json")
    assert (m.images, m.annotations, m.categories, m.undecoded) == (8, 8, 2, 1)
    coco = COCO(str(tmp_path / "all.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [FOUND, NOT_FOUND]
    r = [x for x in rows.to_pylist() if x["instance"] is not None]
    for ann, x in zip(coco.loadAnns(coco.getAnnIds()), r):
        assert ann["image_id"] == x["image_id"] and ann["category_id"] == x["prompt_index"] + 1
        assert np.array_equal(coco.annToMask(ann).astype(bool), decode_rle(x["rle"]))
        x1, y1, x2, y2 = x["box"]
        assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
    names = {im["file_name"] for im in coco.dataset["images"]}
    assert "sub/img02.png" in names and "img00.png" in names
    merge(out, tmp_path / "all.json")  # an earlier merge of ours is replaced
    (tmp_path / "mine.json").write_text("{}")
    with pytest.raises(sam3kit.Sam3Error, match="not written by sam3kit"):
        merge(out, tmp_path / "mine.json")


def test_merge_refuses_an_unfinished_job_unless_partial(tmp_path, batch_images, model):
    run(batch_images, model, tmp_path, OPTIONS, progress=False)
    (tmp_path / "shards" / "shard-00000.parquet").unlink()
    with pytest.raises(InputError, match="1 of 3 shards are not finished"):
        merge(tmp_path, tmp_path / "c.json")
    m = merge(tmp_path, tmp_path / "c.json", partial=True)
    assert m.missing_shards == 1 and m.images == 4


def test_an_overlong_text_stops_the_job_before_anything_is_written(tmp_path, batch_images, batch_checkpoint):
    with pytest.raises(InputError, match="tokens long, the model reads at most 32"):
        run(batch_images, batch_checkpoint, tmp_path / "o", BatchOptions(texts=("word " * 40,)), progress=False)
    assert not (tmp_path / "o").exists()
