"""``benchmarks/bench_onnx.py`` (row (i)) end to end on the tiny checkpoint and its shared export (timings mean
nothing here; the records' layout, the accuracy entries and the torch-free ONNX children do)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_bench_onnx_tiny(tiny_checkpoint, export_dir, tmp_path):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_onnx", BENCH / "bench_onnx.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    export = tmp_path / "export"
    shutil.copytree(export_dir, export)  # an export of this checkpoint with int8: reused, not written again
    out = tmp_path / "r.jsonl"
    mod.main(["--config", "tiny", "--reps", "1", "--warmup", "0", "--max-load", "1000", "--threads", "1",
              "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--export", str(export),
              "--impls", "sam3kit,onnx,onnx-int8"])  # (the int8 torch path: tests/speed, and the full run)
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["bench"] for r in recs] == ["i_onnx_load_and_memory", "i_onnx_vision_encode", "i_onnx_text_prompt",
                                          "i_onnx_click"]
    impls = {"sam3kit", "onnx", "onnx-int8"}
    for r in recs:
        assert set(r["timings"]) == impls and r["export"] == "reused" and r["ratio_median"] > 0
    memory = recs[0]["timings"]
    assert not memory["onnx"]["torch_imported"] and not memory["onnx-int8"]["torch_imported"]
    assert "int8_sam3kit_vs_sam3kit" not in recs[1]["accuracy"]
    assert memory["sam3kit"]["torch_imported"] and memory["onnx"]["median_peak_rss_mb"] > 0
    acc = recs[1]["accuracy"]
    assert acc["onnx_vs_sam3kit"]["features_max_abs_diff"] <= 1e-4
    assert acc["onnx_vs_sam3kit"]["masks_min_iou"] > 0.99 and acc["onnx_vs_sam3kit"]["click_masks_min_iou"] > 0.99
    assert acc["int8_onnx_vs_onnx"]["features_min_cosine"] > 0.999
