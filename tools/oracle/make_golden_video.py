"""Generate the video golden files from Meta's official SAM 3 tracker (PyPI ``sam3==0.1.4``).

This script is NOT part of the ``sam3kit`` package and is NOT run by CI. It drives the official
``Sam3TrackerPredictor`` (CPU, fp32, a tiny random-weight model with a video-configured tracker) through clicks, boxes,
masks and propagations on short synthetic clips and freezes its inputs and outputs under
``tests/golden/official_video/`` so that CI can compare ``sam3kit``'s video tracking with the official semantics
without the (patched) official package. The work is done by the ``golden`` package beside this script
(``video_model``: the tiny model and its biases; ``video_inputs``: the clips; ``video_tracker``: the driver and the
recording of the official control flow; ``video_cases``: the cases; ``video_meta``: ``meta.json``); this file is the
command line. See ``tests/golden/official_video/README.md`` for the format.

How to run
----------
It needs the oracle environment described in ``make_golden_official.py`` (the patched official package in a virtual
environment outside the project) and that environment's folder of CPU shims on ``PYTHONPATH``
(``../shared/oracle`` relative to the checkout: ``sam3_cpu_env.py`` and ``sam3_video_cpu_env.py``, which redirects the
official video code's ``.cuda()`` calls and keeps the inference state on the CPU). From the repository root:

    PYTHONPATH=../shared/oracle /root/oracle-venv/bin/python tools/oracle/make_golden_video.py \
        [--out tests/golden/official_video] [--check-determinism] [--threads 1]

What it writes: ``sam3.pt`` (the tiny weights, biases included, in the released ``sam3.pt`` layout, float16),
``config.json`` (the same architecture in the Hugging Face format), ``cases.pt`` and ``meta.json``. It checks that a
fresh model loaded from the written ``sam3.pt`` reproduces ``cases.pt`` bit for bit and, with
``--check-determinism``, that two generations are identical.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

import torch

import golden  # noqa: F401  (imports the oracle environment's CPU shims before any sam3 module)
import sam3_video_cpu_env  # noqa: F401,E402  (the oracle environment's shims for the official video code)
from golden.checkpoint import checkpoint_for_saving, compare_key_patterns, to_official_layout  # noqa: E402
from golden.hf_config import hf_config_dict  # noqa: E402
from golden.video_cases import run_all  # noqa: E402
from golden.video_meta import FORMAT, build_meta  # noqa: E402
from golden.video_model import VIDEO_MEM_DIM, build_tiny_video, randomise_video, tracker_of  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KEY_LIST = os.path.join(REPO, "tests", "data", "keys_official_sam3pt_layout.txt")


def generate():
    t0 = time.time()
    model = randomise_video(build_tiny_video())
    ck = to_official_layout(model.state_dict())
    cases = {"format": FORMAT, "cases": run_all(tracker_of(model))}
    return ck, cases, time.time() - t0


def load_video_checkpoint(path):
    """A fresh (not randomised) tiny video model loaded from sam3.pt the way the official image builder loads it."""
    from golden.checkpoint import load_official_checkpoint
    return load_official_checkpoint(build_tiny_video(), path)


def assert_same(a, b, path="cases"):
    """Exact structural equality: same keys and lengths, tensors of the same dtype and shape with equal values (NaN
    nowhere), equal scalars. (A digest of torch.save is not used: the pickle of a loaded dict differs from that of a
    fresh one in its memo, not in its values.)"""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys differ"
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, f"{path}: dtype/shape"
        assert torch.equal(a, b), f"{path}: values differ"
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


def write_config(path):
    from transformers import Sam3VideoConfig
    d = hf_config_dict()
    d["tracker_config"]["memory_encoder_output_channels"] = VIDEO_MEM_DIM
    cfg = Sam3VideoConfig(**d)
    cfg.architectures = ["Sam3VideoModel"]
    cfg.to_json_file(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "golden", "official_video"))
    ap.add_argument("--check-determinism", action="store_true", help="generate twice in-process and compare bitwise")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (recorded in meta.json)")
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(args.threads)

    ck, cases, secs = generate()
    print(f"generated in {secs:.1f} s", flush=True)
    determinism = "not checked"
    if args.check_determinism:
        ck2, cases2, _ = generate()
        assert_same(ck, ck2, "weights")
        assert_same(cases, cases2)
        determinism = (f"two in-process generations with {args.threads} thread(s) are bitwise identical (every "
                       "weight, every recorded tensor and value)")
        print("determinism:", determinism, flush=True)

    only_ours, only_ref = compare_key_patterns(ck, KEY_LIST)
    print("key patterns only in ours:", only_ours, "| only in the full-size list:", only_ref, flush=True)

    ck_path = os.path.join(out_dir, "sam3.pt")
    torch.save(checkpoint_for_saving(ck), ck_path)
    write_config(os.path.join(out_dir, "config.json"))
    torch.save(cases, os.path.join(out_dir, "cases.pt"))

    # round trip: a freshly built model loaded from the written sam3.pt reproduces cases.pt
    fresh = load_video_checkpoint(ck_path)
    again = {"format": FORMAT, "cases": run_all(tracker_of(fresh))}
    reloaded = torch.load(os.path.join(out_dir, "cases.pt"), weights_only=True)
    assert_same(reloaded, again)
    print("round trip: sam3.pt loaded into a fresh model reproduces cases.pt bitwise", flush=True)

    with open(ck_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    sizes = {n: os.path.getsize(os.path.join(out_dir, n)) for n in ("sam3.pt", "config.json", "cases.pt")}
    meta = build_meta(cases["cases"], ck, secs, args.threads, determinism, sha, only_ours, only_ref, sizes)
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    total = 0
    for n in sorted(os.listdir(out_dir)):
        s = os.path.getsize(os.path.join(out_dir, n))
        total += s
        print(f"{n:14s} {s / 1e6:7.3f} MB")
    print(f"total          {total / 1e6:7.3f} MB")
    for name, st in meta["track_stats"].items():
        print(name, st)
    print("memory selection:", json.dumps(meta["memory_selection"]))


if __name__ == "__main__":
    main()
