"""``benchmarks/bench_concepts.py`` (row (g), video concepts) end to end on the tiny config (timings are meaningless
here): the record's fields, both sides tracking the same objects, the lock-step steps and the memory marks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
pytest.importorskip("transformers")

RECORD_KEYS = {"bench", "commit", "versions", "threads", "dtype", "timings", "ratio_median", "ratio_paired",
               "target_ratio", "target_met", "memory_flat", "accuracy", "peak_rss_mb_process", "load_avg_1m_start"}


def _script():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_concepts", BENCH / "bench_concepts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_concepts_tiny(tmp_path):
    out = tmp_path / "r.jsonl"
    rec = _script().main(["--config", "tiny", "--frames", "20", "--objects", "1,16", "--selection-objects", "1",
                          "--threads", "1", "--max-load", "1000", "--like-transformers", "--out", str(out)])
    (line,) = out.read_text().splitlines()
    assert json.loads(line)["bench"] == rec["bench"] == "g_video_concepts"
    assert RECORD_KEYS <= set(rec), RECORD_KEYS - set(rec)
    assert set(rec["timings"]) == {"sam3kit_1obj", "sam3kit-selection_1obj", "transformers_1obj", "sam3kit_16obj",
                                   "transformers_16obj"}
    one, sixteen = rec["runs"]
    for run, n in ((one, 1), (sixteen, 16)):
        acc = run["accuracy"]
        # the trick works: both sides track the same n objects born on frame 0, from frame 20 to the end
        assert acc["tracked_objects"] == {20: {"sam3kit": n, "transformers": n}, "end": {"sam3kit": n,
                                                                                        "transformers": n}}
        assert acc["same_ids"] and sorted(acc["frame0_mask_iou"]) == list(range(1, n + 1))
        assert min(acc["frame0_mask_iou"].values()) > 0.9  # the detections' discs on both sides
        # lock-step: the first step computes frames 0..14, then one frame per step up to frame 20
        for k in ("sam3kit", "transformers"):
            assert [f for f, _ in run["all_steps"][k]] == list(range(14, 21))
        assert run["steady_frames"] == [16, 20] and run["per_frame"]["transformers"]["n"] == 5
        assert set(run["memory_mb"]["transformers"]) == {20}
        assert not [k for k in run["memory_mb"] if "held" in k]  # memory_bytes counts the held features itself
        assert run["memory_mb"]["sam3kit"][20] > 0
    assert rec["memory_flat"] is None  # frame 60 not reached
