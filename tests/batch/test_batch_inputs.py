"""The inputs of a batch job (folders, patterns, lists, tables), its exemplar files and its options."""

from __future__ import annotations

import json
import os

import pytest

from sam3kit.batch import BatchOptions, Exemplars
from sam3kit.batch.inputs import collect
from sam3kit.errors import InputError


def _touch(p):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_folder_is_walked_recursively_in_order_without_hidden_names_or_the_output_folder(tmp_path):
    for rel in ["b.png", "a.jpg", "sub/c.png", "sub/deeper/d.webp", ".hidden.png", ".git/e.png", "notes.txt",
                "out/shards/x.png"]:
        _touch(tmp_path / "data" / rel)
    found = collect([str(tmp_path / "data")], exclude=[tmp_path / "data" / "out"])
    assert [im.file_name for im in found.images] == ["a.jpg", "b.png", "sub/c.png", "sub/deeper/d.webp"]
    assert [im.image_id for im in found.images] == [1, 2, 3, 4]
    assert all(os.path.isabs(im.path) for im in found.images)
    assert found.ignored["hidden"] == 2 and found.ignored["not an image"] == 1


def test_glob_list_and_tables_concatenate_in_order_and_keep_the_first_of_a_repeated_path(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for rel in ["imgs/a.png", "imgs/b.png", "imgs/c.png", "other/z.png"]:
        _touch(tmp_path / rel)
    (tmp_path / "lists").mkdir()
    # a list's relative paths are relative to the list's folder; comments and blank lines are skipped
    (tmp_path / "lists" / "l.txt").write_text("# my images\n../other/z.png\n\n../imgs/a.png\n")
    (tmp_path / "t.csv").write_text("id,file\n1,imgs/c.png\n2,imgs/b.png\n")
    pq.write_table(pa.table({"path": ["imgs/b.png", "imgs/a.png"]}), tmp_path / "t.parquet")
    monkeypatch.chdir(tmp_path)
    found = collect(["imgs/*.png", "lists/l.txt", "t.parquet"])
    assert [os.path.relpath(im.path, tmp_path) for im in found.images] == \
        ["imgs/a.png", "imgs/b.png", "imgs/c.png", "other/z.png"]
    assert [im.file_name for im in found.images] == ["a.png", "b.png", "c.png", "../other/z.png"]
    csv = collect(["t.csv"], path_column="file")
    assert [os.path.relpath(im.path, tmp_path) for im in csv.images] == ["imgs/c.png", "imgs/b.png"]
    # the fingerprint is a function of the ordered paths
    assert collect(["t.csv"], path_column="file").fingerprint() == csv.fingerprint() != found.fingerprint()


@pytest.mark.parametrize("spec, message", [
    ("missing_dir", "no such file or folder"), ("empty", "no image files in folder"),
    ("*.nothing", "no image file matches"), ("t.csv", "has no column 'path' (columns: id, file)"),
    ("empty.txt", "lists no paths"),
])
def test_inputs_that_give_no_image_are_errors_naming_them(tmp_path, monkeypatch, spec, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "t.csv").write_text("id,file\n1,a.png\n")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as e:
        collect([spec])
    assert message in str(e.value)


def test_exemplar_files_shared_or_per_image(tmp_path):
    f = tmp_path / "ex" / "shared.json"
    f.parent.mkdir()
    f.write_text(json.dumps([[1, 2, 30, 40], [5, 5, 9, 9, 0]]))
    ex = Exemplars.read(f)
    assert ex.shared == ((1.0, 2.0, 30.0, 40.0, 1), (5.0, 5.0, 9.0, 9.0, 0))
    assert ex.for_image("/any/image.png") == ex.shared
    assert ex.record() == {"boxes": [[1.0, 2.0, 30.0, 40.0, 1], [5.0, 5.0, 9.0, 9.0, 0]]}
    per = tmp_path / "ex" / "per.json"
    per.write_text(json.dumps({"../imgs/a.png": [[0, 0, 10, 10]]}))
    ex = Exemplars.read(per)
    assert ex.for_image(str(tmp_path / "imgs" / "a.png")) == ((0.0, 0.0, 10.0, 10.0, 1),)
    assert ex.for_image(str(tmp_path / "imgs" / "b.png")) is None
    assert ex.record()["images"] == 1 and len(ex.record()["sha256"]) == 64


@pytest.mark.parametrize("content, message", [
    ("[[1, 2, 3]]", "must be [x1, y1, x2, y2]"), ("[[10, 0, 5, 5]]", "x1 < x2"),
    ("[[0, 0, 5, 5, 2]]", "must be 1 (positive) or 0"), ("{\"a.png\": []}", "non-empty list of boxes"),
    ("not json", "not valid JSON"), ("3", "must hold a list of boxes"),
])
def test_bad_exemplar_files_say_what_is_wrong(tmp_path, content, message):
    f = tmp_path / "ex.json"
    f.write_text(content)
    with pytest.raises(InputError) as e:
        Exemplars.read(f)
    assert message in str(e.value)


def test_options_refuse_what_has_no_meaning():
    with pytest.raises(InputError, match="no prompt"):
        BatchOptions()
    with pytest.raises(InputError, match="go with one text"):
        BatchOptions(texts=("a", "b"), exemplars=[[0, 0, 5, 5]])
    with pytest.raises(InputError, match="threshold"):
        BatchOptions(texts=("a",), threshold=1.5)
    with pytest.raises(InputError, match="unknown engine"):
        BatchOptions(texts=("a",), engine="spark")
    with pytest.raises(InputError, match="shard_size"):
        BatchOptions(texts=("a",), shard_size=0)
    o = BatchOptions(texts=("dog", "cat", "dog"), exemplars=None)
    assert o.texts == ("dog", "cat") and o.prompt_labels == ("dog", "cat")
    assert BatchOptions(exemplars=[[0, 0, 5, 5]]).prompt_labels == ("exemplars",)
    # only what the rows depend on is recorded (and compared on a re-run): not the engine, workers or sizes
    a = BatchOptions(texts=("dog",), engine="local", workers=1, batch_size=1, shard_size=4).result_record()
    b = BatchOptions(texts=("dog",), engine="ray", workers=3, batch_size=8, shard_size=9).result_record()
    assert a == b
