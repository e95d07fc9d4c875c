"""The benchmark scripts run end to end on the tiny config (CI keeps them working; timings are meaningless here).

Each script appends JSON lines to a temporary file; the checks read the records back. The load / memory
benchmark runs its child processes (one repetition).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
pytest.importorskip("transformers")


def _script(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FAST = ["--reps", "1", "--warmup", "0", "--max-load", "1000", "--config", "tiny", "--threads", "1"]
RECORD_KEYS = {"bench", "commit", "versions", "threads", "dtype", "timings", "ratio_median", "ratio_paired",
               "target_ratio", "accuracy", "peak_rss_mb_process", "load_avg_1m_start"}


def test_paired_ratios_pair_each_round():
    """A machine that slows down mid-run: the per-round ratios stay put where the ratio of medians does not."""
    common = _script("common")
    timings = {"transformers": {"all_s": [10.0, 20.0, 40.0]}, "sam3kit": {"all_s": [9.0, 16.0, 40.0]},
               "short": {"all_s": [1.0]}, "memory": {"all_mb": [5.0, 5.0, 5.0]}}
    got = common.paired_ratios(timings)
    assert got == {"sam3kit": 0.9}  # rounds 0.9, 0.8, 1.0; unequal lengths and other units are left out
    assert common.paired_ratios({"sam3kit": {"all_s": [1.0]}}) == {}


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_encode_and_prompts(tmp_path):
    out = tmp_path / "r.jsonl"
    extra = ["--fast", "int8"] if importlib.util.find_spec("onnxruntime") else []
    _script("bench_encode").main(FAST + ["--out", str(out), "--image-size", "56", "--floor"] + extra)
    _script("bench_prompt").main(FAST + ["--out", str(out)])
    recs = _records(out)
    assert [r["bench"] for r in recs] == ["a_vision_encode", "b_text_prompt_cached", "c_click_cached"]
    for r in recs:
        assert RECORD_KEYS <= set(r), RECORD_KEYS - set(r)
        assert {"sam3kit", "transformers"} <= set(r["timings"])
    a, b, c = recs
    assert a["accuracy"]["fpn_max_abs_diff"] <= 1e-4
    assert max(v for k, v in b["accuracy"].items() if k.endswith("diff")) <= 1e-4
    assert max(v for k, v in c["accuracy"].items() if k.endswith("diff")) <= 1e-4
    assert "56px" in a["accuracy"]
    assert {"kernel-floor"} <= set(a["timings"]) and a["ratio_median_kernel-floor"] > 0
    if extra:
        assert a["accuracy"]["int8"]["trunk_cosine"] > 0.999
        assert a["ratio_median_kernel-floor-int8"] > 0


def test_load_and_memory(tmp_path):
    out = tmp_path / "r.jsonl"
    bp = _script("bench_process")
    ckpt = _script("make_checkpoint").make("tiny", tmp_path / "ckpt")
    bp.main(FAST + ["--out", str(out), "--checkpoint", str(ckpt)])
    d, e = _records(out)
    assert d["bench"] == "d_load" and e["bench"] == "e_peak_rss_image_text"
    assert d["timings"]["sam3kit"]["median_s"] > 0 and e["timings"]["transformers"]["median_mb"] > 0
    assert e["ratio_median"] is not None


def test_video(tmp_path):
    out = tmp_path / "r.jsonl"
    _script("bench_video").main(FAST + ["--out", str(out), "--frames", "20"])
    (f,) = _records(out)
    assert f["bench"] == "f_video_tracking"
    assert RECORD_KEYS <= set(f), RECORD_KEYS - set(f)
    one, four = f["runs"]
    assert (one["objects"], four["objects"]) == (1, 4)
    for r in (one, four):
        assert {"sam3kit", "sam3kit-selection", "transformers"} <= set(r["timings"])
        assert set(r["per_frame_s"]["sam3kit"]) == {"1", "7", "20"}
        assert set(r["memory_mb"]["transformers"]) == {"7", "20"} and r["memory_mb"]["sam3kit"]["20"] > 0
    # memory selection off, one object: the track of the reference patched to the official memory-encoder order
    assert max(one["low_res_logits_max_abs_diff"]["transformers-official-order"].values()) <= 1e-4
    assert 0 < one["last_frame_foreground_fraction"] < 1  # a non-trivial mask
