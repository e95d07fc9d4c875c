"""A job folder across runs: which shards count as finished, what is removed, what is refused (no model needed:
shard files are written here with ``table.write_shard``)."""

from __future__ import annotations

import json

import pytest

from sam3kit.batch.inputs import BatchImage, InputList
from sam3kit.batch.job import MANIFEST_NAME, prepare
from sam3kit.batch.table import RowBuilder, read_identity, write_shard
from sam3kit.errors import OutputError

MODEL = {"source": "/models/tiny", "fingerprint": "f" * 64}
OPTIONS = {"sam3kit": "0", "texts": ["dog"], "threshold": 0.5}


def _inputs(n: int, prefix: str = "/data/img") -> InputList:
    return InputList([BatchImage(i + 1, f"{prefix}{i}.png", f"img{i}.png") for i in range(n)])


def _finish(job, shard) -> None:
    rows = RowBuilder()
    for im in shard.images:
        rows.add(im.image_id, im.path, width=4, height=3, prompt_index=0, prompt="dog", presence=0.9)
    write_shard(job.shard_dir / shard.name, rows.table(), job.identity(shard))


def _prepare(out, inputs, *, model=MODEL, options=OPTIONS, size=None, force=False):
    return prepare(out, inputs, ["/data"], model, options, size, {"engine": "local"}, force=force)


def test_shards_are_deterministic_and_finished_ones_are_kept(tmp_path):
    job = _prepare(tmp_path, _inputs(10), size=4)
    assert [[im.image_id for im in s.images] for s in job.shards] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert job.todo == job.shards and not job.kept
    m = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert m["status"] == "running" and m["shard_size"] == 4 and m["inputs"]["count"] == 10
    assert [s["images"] for s in m["shards"]] == [[1, 4], [5, 8], [9, 10]]
    _finish(job, job.shards[0])
    _finish(job, job.shards[2])
    assert read_identity(job.shard_dir / "shard-00000.parquet")["inputs"][0] == [1, "/data/img0.png", "img0.png"]
    (job.shard_dir / ".shard-00001.parquet.abc.tmp").write_bytes(b"half a file")  # a kill while writing
    again = _prepare(tmp_path, _inputs(10))  # no size given: the earlier run's
    assert again.shard_size == 4
    assert [s.index for s in again.kept] == [0, 2] and [s.index for s in again.todo] == [1]
    assert sorted(p.name for p in again.shard_dir.iterdir()) == ["shard-00000.parquet", "shard-00002.parquet"]


@pytest.mark.parametrize("change, said", [
    ({"model": {"source": "/models/other", "fingerprint": "e" * 64}}, "the model differs"),
    ({"options": dict(OPTIONS, threshold=0.3)}, "threshold: 0.5 before, 0.3 now"),
    ({"inputs": _inputs(11)}, "the inputs differ (10 images before, 11 now)"),
    ({"size": 5}, "shard size: 4 before, 5 now"),
])
def test_a_different_job_is_refused_without_force(tmp_path, change, said):
    job = _prepare(tmp_path, _inputs(10), size=4)
    for s in job.shards:
        _finish(job, s)
    inputs = change.pop("inputs", _inputs(10))
    with pytest.raises(OutputError) as e:
        _prepare(tmp_path, inputs, **change)
    assert said in str(e.value) and "--force" in str(e.value)
    assert len(list(job.shard_dir.iterdir())) == 3  # nothing touched


def test_force_replaces_what_changed_and_keeps_what_did_not(tmp_path):
    job = _prepare(tmp_path, _inputs(10), size=4)
    for s in job.shards:
        _finish(job, s)
    # two more images: shards 0 and 1 are unchanged, shard 2 gets images 11 and 12
    grown = _prepare(tmp_path, _inputs(12), force=True)
    assert [s.index for s in grown.kept] == [0, 1] and [s.index for s in grown.todo] == [2]
    assert not (grown.shard_dir / "shard-00002.parquet").exists()  # its old rows are gone until recomputed
    # other options: no shard matches; fewer images: shard files beyond the plan are removed
    for s in grown.todo:
        _finish(grown, s)
    other = _prepare(tmp_path, _inputs(6), options=dict(OPTIONS, threshold=0.1), force=True)
    assert not other.kept and [s.index for s in other.todo] == [0, 1]
    assert list(other.shard_dir.iterdir()) == []


def test_a_shard_file_of_another_job_or_a_broken_one_is_recomputed(tmp_path):
    job = _prepare(tmp_path, _inputs(8), size=4)
    _finish(job, job.shards[0])
    (job.shard_dir / job.shards[1].name).write_bytes(b"PAR1 broken")
    other = _prepare(tmp_path / "other", _inputs(8, prefix="/else/img"), size=4)  # same ids, other paths
    (job.shard_dir / job.shards[0].name).replace(other.shard_dir / other.shards[0].name)
    again = _prepare(tmp_path / "other", _inputs(8, prefix="/else/img"))
    assert not again.kept and len(again.todo) == 2
    again = _prepare(tmp_path, _inputs(8))
    assert not again.kept and len(again.todo) == 2


def test_a_folder_of_something_else_is_refused(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(OutputError, match="not the manifest of a sam3kit batch job"):
        _prepare(tmp_path, _inputs(2), force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        _prepare(tmp_path / "file", _inputs(2))
