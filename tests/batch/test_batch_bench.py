"""``benchmarks/bench_batch.py`` (row (h)) runs end to end on the tiny config and writes its record (the figures
of so small a run mean nothing)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("ray")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_bench_batch_runs_and_records(tmp_path, monkeypatch):
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray session is already open in this process")
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_batch", BENCH / "bench_batch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.jsonl"
    mod.main(["--config", "tiny", "--images", "12", "--shard-size", "4", "--workers", "1", "--reps", "1",
              "--warmup", "0", "--cost-images", "1", "--max-load", "1000", "--threads", "1", "--ray-store-mb", "150",
              "--image-px", "64x48", "--out", str(out)])
    rec = json.loads(out.read_text().splitlines()[-1])
    assert rec["bench"] == "h_batch" and set(rec["timings"]) == {"local_w1", "ray_w1"}
    assert rec["images_per_s"]["local_w1"] > 0 and rec["images_per_s"]["ray_w1"] > 0
    assert set(rec["cost_per_image_s"]) == {"decode", "vit", "prompts", "rows"}
    assert rec["instances_per_image"] == 20  # threshold 0 on the tiny model: every query of both texts
    assert not ray.is_initialized()
