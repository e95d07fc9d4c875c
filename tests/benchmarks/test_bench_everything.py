"""``benchmarks/bench_everything.py`` end to end on the tiny head (timings are meaningless here): the record's
fields, the accuracy comparison, the released shapes on the meta device, and nothing appended without --out."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _script():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_everything", BENCH / "bench_everything.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_everything_tiny(tmp_path, capsys):
    argv = ["--config", "tiny", "--points-per-side", "4", "--points-per-batch", "8", "--image", "40x60", "--reps",
            "1", "--warmup", "0", "--max-load", "1000", "--threads", "1", "--scenarios", "defaults,scored,upsampled"]
    rec = _script().main(argv + ["--accuracy", "--shapes"])
    assert set(rec["timings"]) == {"click", "click_predict", "decoder", "grid_defaults", "grid_scored",
                                   "grid_upsampled"}
    assert rec["records"]["upsampled"] == 4 * 4 * 3  # filters and NMS off: every candidate is a record
    acc = rec["accuracy"]
    assert acc["candidates"] == 48 and acc["kept_same"] == acc["kept_reference"] == acc["kept_ours"]
    assert acc["stability_max_abs_diff"] <= 1e-6 and acc["mask_pixels_differing"] == 0
    assert rec["released_shapes"]["mask_logits"] == [8, 3, 288, 288]
    printed = json.loads(capsys.readouterr().out)
    assert printed["bench"] == "j_everything_cached" and not list(tmp_path.iterdir())
    out = tmp_path / "r.jsonl"
    _script().main(argv + ["--out", str(out), "--scenarios", "defaults"])
    (line,) = out.read_text().splitlines()
    assert json.loads(line)["grid"] == "4x4"
