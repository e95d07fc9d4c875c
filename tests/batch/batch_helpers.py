"""Helpers of the batch tests: a tiny checkpoint whose texts find instances, test images, reading a job's rows
back, and killing a running job.

The checkpoint is the tiny random model with two changes made before it is saved (as other tests bias tiny
models, e.g. the presence head in ``tests/model/test_detector.py``): the presence head's last bias is raised to
6 (presence ~1, instead of ~0.5) and the class-score projections (``dot_product_scoring.query_proj`` /
``text_proj`` weights) are scaled by 12, so that class scores spread from ~0.2 to ~0.9 instead of all sitting
near 0.5. At ``THRESHOLD`` = 0.8, ``FOUND`` ("dog") then keeps one instance per image and ``NOT_FOUND``
("a red car") none: the jobs have rows of both kinds. (Random weights barely look at the image: the scores
depend on the text; masks, boxes and areas depend on the image's size.)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

FOUND, NOT_FOUND = "dog", "a red car"
THRESHOLD = 0.8
PRESENCE_BIAS = 6.0
SCORE_SCALE = 12.0


def write_batch_checkpoint(folder: Path) -> Path:
    import torch

    from sam3kit.config import Sam3Config
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.testing import randomize_, write_tokenizer_files
    from sam3kit.weights.writer import save_hf

    cfg = Sam3Config.tiny()
    model = randomize_(Sam3Model(cfg).eval(), seed=0)
    det = model.detector_model
    with torch.no_grad():
        det.detr_decoder.presence_head.layer3.bias.fill_(PRESENCE_BIAS)
        det.dot_product_scoring.query_proj.weight.mul_(SCORE_SCALE)
        det.dot_product_scoring.text_proj.weight.mul_(SCORE_SCALE)
    save_hf(model.state_dict(), cfg, folder)
    write_tokenizer_files(folder)
    return folder


def make_images(folder: Path, n: int, seed: int = 0, corrupt: bool = True) -> Path:
    """``n`` small PNG/JPEG images of varied sizes in ``folder`` (some in a subfolder), plus ``sub/corrupt.png``
    (not an image) and a hidden file."""
    rng = np.random.default_rng(seed)
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(24, 96, 2))
        yy, xx = np.mgrid[:h, :w]
        img = np.stack([xx * 255 // w, yy * 255 // h, rng.integers(0, 255, (h, w))], -1).astype(np.uint8)
        where = folder / ("sub" if i % 3 == 2 else "") / f"img{i:02d}.{'jpg' if i % 4 == 3 else 'png'}"
        Image.fromarray(img).save(where)
    if corrupt:
        (folder / "sub" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    (folder / ".hidden.png").write_bytes(b"skipped")
    return folder


def job_rows(out: Path):
    """All rows of a job folder, shard after shard (an Arrow table)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((Path(out) / "shards").glob("shard-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).replace_schema_metadata(None)


def assert_rows_close(a, b, atol: float = 1e-5) -> None:
    """The same rows up to floating-point rounding (scores, presence, boxes within ``atol``), all else equal."""
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        if name in ("score", "presence", "box"):
            assert [v is None for v in x] == [v is None for v in y], name
            xs = np.array([v for v in x if v is not None], dtype=np.float64)
            ys = np.array([v for v in y if v is not None], dtype=np.float64)
            np.testing.assert_allclose(xs, ys, atol=atol, rtol=0, err_msg=name)
        else:
            assert x == y, name


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("sam3kit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sam3kit.cli"]


def kill_when_a_shard_is_written(cmd: list[str], out: Path, total: int, env: dict, timeout: float = 120) -> int:
    """Start ``cmd``, SIGKILL it as soon as its first shard file is in ``out``; returns how many shard files there
    were when it died. Fails if the run finished (or died) before it could be killed part-way."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    shards = out / "shards"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if shards.is_dir() and any(shards.glob("shard-*.parquet")):
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended by itself before the kill (rc {proc.returncode}): " \
                                               f"{err.decode()[-2000:]}"
    written = len(list(shards.glob("shard-*.parquet")))
    assert 1 <= written < total, f"{written} of {total} shards written when killed: not part-way"
    return written


def assert_resumed_equals(out: Path, reference, code: int, said: str, written: int, total: int) -> None:
    """The re-run (exit ``code``, printing ``said``) kept the ``written`` shards, computed the others, and the job
    holds the ``reference`` rows, each once."""
    assert code == 0
    assert f"{written} kept from an earlier run" in said
    assert f"{total - written} shard{'s' if total - written != 1 else ''} written" in said
    rows = job_rows(out)
    assert rows.equals(reference), "the resumed job's rows differ from an uninterrupted run's"
    keys = list(zip(*(rows.column(c).to_pylist() for c in ("image_id", "prompt_index", "instance"))))
    assert len(keys) == len(set(keys))  # nothing duplicated
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"shard-{k:05d}.parquet" for k in range(total)]
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
