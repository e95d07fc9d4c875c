"""``cli/manifest.py``: the shared part of a job's options record, and the file lists read from our JSON files."""

from __future__ import annotations

import hashlib
import json

from sam3kit import __version__
from sam3kit.cli.manifest import (DIFFERS, MANIFEST_VERSION, RESULT_NAME, SAME, UNKNOWN, as_read_back, compare,
                                  job_record, listed_files)


def test_job_record_identifies_the_input_and_keeps_key_order(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"12345")
    rec = job_record(f, {"source": "m"}, {"dtype": "fp32", "fast": "none", "image_size": None}, kind="image")
    assert list(rec) == ["sam3kit", "manifest", "image", "model", "dtype", "fast", "image_size"]
    assert rec["sam3kit"] == __version__ and rec["manifest"] == MANIFEST_VERSION
    assert rec["image"]["path"] == str(f.resolve()) and rec["image"]["bytes"] == 5
    assert rec["image"]["sha256"] == hashlib.sha256(b"12345").hexdigest() and "mtime_ns" not in rec["image"]
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


def test_compare_names_what_differs():
    old = {"sam3kit": "0.1", "image": {"path": "/a/x.png", "bytes": 3, "sha256": "s"},
           "model": {"source": "/m", "fingerprint": "f"}, "threshold": 0.5, "formats": ["json", "png"],
           "overlay": False, "prompts": [{"text": "dog"}]}
    same = dict(old, image=dict(old["image"], path="/moved/x.png"), model={"source": "/m/model.safetensors",
                                                                         "fingerprint": "f"})
    assert compare(old, same) == ([], SAME)  # moved image, another path to the same weights
    new = dict(old, sam3kit="0.2", threshold=0.3, formats=["png"], overlay=True, prompts=[{"text": "cat"}],
               image=dict(old["image"], sha256="t"), model={"source": "/m", "fingerprint": "g"})
    diffs, model = compare(old, new)
    assert model == DIFFERS
    assert diffs == ["the sam3kit version differs: 0.1 before, 0.2 now", "the image differs (its content changed)",
                     "option --threshold differs: 0.5 before, 0.3 now", "option --format differs: json,png before, "
                     "png now", "option --overlay differs: off before, on now", "the prompts differ"]
    hub = dict(old, model={"source": "facebook/sam3", "fingerprint": "f"})
    assert compare(hub, dict(old, model={"source": "facebook/sam3", "fingerprint": None}))[1] == SAME
    assert compare(hub, dict(old, model={"source": "other/sam3", "fingerprint": None}))[1] == UNKNOWN
