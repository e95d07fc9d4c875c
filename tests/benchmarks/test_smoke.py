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


def test_gpu_rows_and_summary_on_the_cpu(tmp_path, capsys):
    """bench_gpu.py (row (k)) tried on the CPU: every row and both dtypes write records with the device facts, the
    comparisons against transformers within fp32 rounding, bf16 against sam3kit fp32, and the bf16 targets; the
    summary table names every record. (torch.compile is left out here: minutes on this CPU.)"""
    out = tmp_path / "r.jsonl"
    _script("bench_gpu").main(FAST + ["--out", str(out), "--device", "cpu", "--compile", "", "--batch", "2"])
    recs = _records(out)
    names = [(r["bench"], r.get("dtype")) for r in recs]
    rows = ["gpu_encode", "gpu_text", "gpu_click", "gpu_e2e_b1", "gpu_e2e_b2", "gpu_predictor"]
    assert names == [(n, d) for d in ("fp32", "bf16") for n in rows] + [("gpu_summary", None)]
    for r in recs[:-1]:
        assert {"device", "device_name", "torch_cuda", "timings", "median_ms", "peak_gpu_mib", "accuracy"} <= set(r)
        assert r["tf32"] is False
        if r["bench"] != "gpu_predictor":
            assert {"sam3kit", "transformers"} == set(r["timings"]) and r["ratios"]["sam3kit"] > 0
            diffs = [v for k, v in r["accuracy"].items() if k.endswith("diff_vs_transformers")]
            assert diffs and max(diffs) <= (1e-4 if r["dtype"] == "fp32" else 0.05), r["accuracy"]
    bf16 = {r["bench"]: r for r in recs if r.get("dtype") == "bf16"}
    assert bf16["gpu_encode"]["accuracy"]["fpn_cosine_min_vs_sam3kit_fp32"] > 0.999
    assert bf16["gpu_e2e_b1"]["accuracy"]["top10_mask_iou_mean_vs_sam3kit_fp32"] > 0.9
    assert bf16["gpu_click"]["target"]["ratio_at_most"] == 0.8
    assert bf16["gpu_e2e_b1"]["target"]["seconds_at_most"] == 0.030
    assert recs[-1]["skipped"] == []
    summary = _script("gpu/summary")
    summary.main([str(out)])
    table = capsys.readouterr().out
    for n in rows:
        assert n in table
    assert "gpu_summary: 12 records" in table


def test_gpu_deadline_skips_rows(tmp_path):
    """--deadline-s: rows that would start after it are recorded as skipped, not run."""
    out = tmp_path / "r.jsonl"
    _script("bench_gpu").main(FAST + ["--out", str(out), "--device", "cpu", "--compile", "", "--dtypes", "fp32",
                                      "--deadline-s", "0"])
    (summary,) = _records(out)
    assert summary["bench"] == "gpu_summary" and summary["skipped"] == [
        "fp32:encode", "fp32:text", "fp32:click", "fp32:e2e", "fp32:e2e", "fp32:predictor"]


def test_video_benchmarks_take_a_device_and_a_dtype(tmp_path):
    """bench_video / bench_concepts with --dtype bf16 (the GPU run's arguments, on the CPU): the records carry the
    dtype and device, 16 objects are placed and tracked on both sides."""
    out = tmp_path / "r.jsonl"
    args = FAST + ["--out", str(out), "--device", "cpu", "--dtype", "bf16", "--frames", "16"]
    _script("bench_video").main(args + ["--objects", "16", "--selection-objects", "", "--official-objects", ""])
    _script("bench_concepts").main(args + ["--objects", "16", "--selection-objects", ""])
    f, g = _records(out)
    assert (f["dtype"], f["device"], g["dtype"], g["device"]) == ("bfloat16", "cpu", "bfloat16", "cpu")
    assert f["runs"][0]["objects"] == 16 and 0 < f["runs"][0]["last_frame_foreground_fraction"] < 1
    assert g["accuracy"]["16obj"]["same_ids"] and g["accuracy"]["16obj"]["tracked_objects"]["end"]["sam3kit"] == 16
