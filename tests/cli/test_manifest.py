"""``cli/manifest.py``: the shared part of a job's options record, and the file lists read from our JSON files."""

from __future__ import annotations

import json

from sam3kit import __version__
from sam3kit.cli.manifest import MANIFEST_VERSION, RESULT_NAME, as_read_back, job_record, listed_files


def test_job_record_identifies_the_input_and_keeps_key_order(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"12345")
    rec = job_record(f, {"source": "m"}, {"dtype": "fp32", "fast": "none", "image_size": None}, kind="image")
    assert list(rec) == ["sam3kit", "manifest", "image", "model", "dtype", "fast", "image_size"]
    assert rec["sam3kit"] == __version__ and rec["manifest"] == MANIFEST_VERSION
    assert rec["image"]["path"] == str(f.resolve()) and rec["image"]["bytes"] == 5
    assert list(job_record(f, {}, {}, kind="video")) == ["sam3kit", "manifest", "video", "model"]
    assert as_read_back({"formats": ("png",), "n": 1}) == {"formats": ["png"], "n": 1}


def test_listed_files_keeps_plain_names_only(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"files": ["mask_000.png", "../evil.png", "sub/a.png", "", "..", RESULT_NAME, 3]}))
    assert listed_files(p) == ["mask_000.png"]
    assert listed_files(tmp_path / "missing.json") == []
    p.write_text("[1, 2]")  # not a dict
    assert listed_files(p) == []
    p.write_text("{trunc")
    assert listed_files(p) == []
