"""``cli/job_outputs.py``: one job's files written as a unit, the manifest last, other files left alone."""

from __future__ import annotations

import json
import os

import pytest

from sam3kit.cli.job_outputs import JobOutputs
from sam3kit.cli.manifest import PARTIAL_NAME, RESULT_NAME
from sam3kit.errors import OutputError


def _write_planned(out):
    for name in out.planned:
        (out.folder / name).write_bytes(b"new")


def test_fresh_folder(tmp_path):
    out = JobOutputs.begin(tmp_path / "job", ["a.png", "b.png"], force=False)
    assert json.loads((tmp_path / "job" / PARTIAL_NAME).read_text()) == {"files": ["a.png", "b.png"]}
    assert not out.may_overwrite("a.png")
    _write_planned(out)
    assert out.commit({"files": out.planned}) == ["a.png", "b.png", RESULT_NAME]
    assert sorted(os.listdir(tmp_path / "job")) == ["a.png", "b.png", RESULT_NAME]  # marker removed


def test_foreign_file_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "b.png").write_bytes(b"user's")
    with pytest.raises(OutputError, match="b.png exists already; pass --force"):
        JobOutputs.begin(tmp_path, ["a.png", "b.png"], force=False)
    assert os.listdir(tmp_path) == ["b.png"]
    (tmp_path / RESULT_NAME).write_text("{}")  # a manifest of another run counts too
    (tmp_path / "b.png").unlink()
    with pytest.raises(OutputError, match=RESULT_NAME):
        JobOutputs.begin(tmp_path, ["a.png"], force=False)


def test_interrupted_run_is_resumed_and_its_extra_files_removed(tmp_path):
    (tmp_path / PARTIAL_NAME).write_text(json.dumps({"files": ["a.png", "old.png"]}))
    (tmp_path / "a.png").write_bytes(b"old")
    (tmp_path / "old.png").write_bytes(b"old")
    out = JobOutputs.begin(tmp_path, ["a.png"], force=False)
    assert out.may_overwrite("a.png") and not out.may_overwrite("c.png")
    assert json.loads((tmp_path / PARTIAL_NAME).read_text()) == {"files": ["a.png", "old.png"]}
    _write_planned(out)
    out.commit({"files": out.planned})
    assert sorted(os.listdir(tmp_path)) == ["a.png", RESULT_NAME]


def test_force_replaces_the_earlier_run(tmp_path):
    (tmp_path / RESULT_NAME).write_text(json.dumps({"files": ["a.png", "gone.png"]}))
    (tmp_path / "a.png").write_bytes(b"old")
    (tmp_path / "gone.png").write_bytes(b"old")
    (tmp_path / "user.txt").write_bytes(b"not listed: kept")
    out = JobOutputs.begin(tmp_path, ["a.png"], force=True)
    assert not (tmp_path / RESULT_NAME).exists()  # incomplete until the new manifest is written
    assert out.may_overwrite("anything")
    _write_planned(out)
    out.commit({"files": out.planned})
    assert sorted(os.listdir(tmp_path)) == ["a.png", RESULT_NAME, "user.txt"]
    assert json.loads((tmp_path / RESULT_NAME).read_text()) == {"files": ["a.png"]}
