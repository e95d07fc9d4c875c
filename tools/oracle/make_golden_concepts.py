"""Generate the concept (detect-and-track) golden files from Meta's official SAM 3 video model (PyPI ``sam3==0.1.4``).

This script is NOT part of the ``sam3kit`` package and is NOT run by CI. It drives the official
``Sam3VideoInferenceWithInstanceInteractivity`` (CPU, fp32, a tiny random-weight model: the image golden files'
detector with the video golden files' tracker) the way the official ``Sam3VideoPredictor`` does (text and exemplar
prompts, propagation forward, backward and both, a click refinement) on a short synthetic clip, with heuristics
chosen so that every one of them acts, and freezes its inputs, outputs and per-frame decisions under
``tests/golden/official_concepts/``. The work is done by the ``golden`` package beside this script (``concept_model``:
the model and its weight changes; ``concept_clip``: the clip; ``concept_driver``: driving and recording;
``concept_cases``: the cases and heuristics; ``concept_meta``: ``meta.json``); this file is the command line. See
``tests/golden/official_concepts/README.md`` for the format.

How to run
----------
It needs the oracle environment described in ``make_golden_official.py`` and that environment's folder of CPU shims
on ``PYTHONPATH`` (``../shared/oracle`` relative to the checkout: ``sam3_cpu_env.py`` and ``sam3_video_cpu_env.py``).
From the repository root:

    PYTHONPATH=../shared/oracle /root/oracle-venv/bin/python tools/oracle/make_golden_concepts.py \
        [--out tests/golden/official_concepts] [--check-determinism] [--threads 1]

What it writes: ``sam3.pt`` (the tiny weights in the released layout, float16), ``config.json`` (the same
architecture in the Hugging Face format), ``cases.pt`` and ``meta.json``. It asserts that every heuristic acted in
the golden case, that every thresholded value lies clear of its threshold, that a fresh model loaded from the written
``sam3.pt`` reproduces ``cases.pt`` exactly and, with ``--check-determinism``, that two generations are identical.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

os.environ.setdefault("FP32_FRAMES", "1")  # read by sam3_video_cpu_env at import: keep the official frames in fp32

import torch  # noqa: E402

import golden  # noqa: F401,E402  (imports the oracle environment's CPU shims before any sam3 module)
import sam3_video_cpu_env  # noqa: F401,E402  (the oracle environment's shims for the official video code)
from golden.checkpoint import (checkpoint_for_saving, compare_key_patterns, load_official_checkpoint,  # noqa: E402
                               to_official_layout)
from golden.concept_cases import run_all  # noqa: E402
from golden.concept_meta import FORMAT, build_meta, event_counts, margins  # noqa: E402
from golden.concept_model import build_tiny_concepts, randomise_concepts, write_config  # noqa: E402
from make_golden_video import assert_same  # noqa: E402  (exact structural equality of two recordings)

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KEY_LIST = os.path.join(REPO, "tests", "data", "keys_official_sam3pt_layout.txt")

GOLDEN_CASE = "text_forward"
# every heuristic must act in the golden case
REQUIRED_EVENTS = ["births_on_later_frames", "hotstart_removed_unmatched", "hotstart_removed_duplicate",
                   "reconditioned", "occlusion_suppressed"]
# the smallest distance allowed between a recorded value and its threshold, by kind (margins keys prefix): far above
# the tolerances a port is held to, so that such a port takes the same decisions
MIN_MARGINS = {"det_prob": 1e-3, "kept_det_score": 1e-3, "nms_iou": 5e-3, "det_trk_iou": 5e-3,
               "tracker_object_score_logit": 1e-3, "track_track_iou": 5e-3, "area_shrink_ratio": 5e-3}


def cases_file(clip, cases):
    return {"format": FORMAT, "frames": clip["frames"], "cases": cases}


def generate(model=None):
    t0 = time.time()
    model = model if model is not None else randomise_concepts(build_tiny_concepts())
    ck = to_official_layout(model.state_dict())
    clip, cases = run_all(model)
    return ck, clip, cases, time.time() - t0


def check_events_and_margins(cases):
    ev = event_counts(cases[GOLDEN_CASE])
    missing = [k for k in REQUIRED_EVENTS if ev[k] < 1]
    assert not missing, f"{GOLDEN_CASE}: these heuristics never acted: {missing} ({ev})"
    for name, case in cases.items():
        for key, gap in margins(case).items():
            need = [v for p, v in MIN_MARGINS.items() if key.startswith(p)]
            assert need, key
            assert gap is None or gap >= need[0], f"{name}: {key} = {gap} < {need[0]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "golden", "official_concepts"))
    ap.add_argument("--check-determinism", action="store_true", help="generate twice in-process and compare exactly")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (recorded in meta.json)")
    args = ap.parse_args()
    assert os.environ["FP32_FRAMES"] == "1"
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(args.threads)

    ck, clip, cases, secs = generate()
    print(f"generated in {secs:.1f} s", flush=True)
    check_events_and_margins(cases)
    determinism = "not checked"
    if args.check_determinism:
        ck2, clip2, cases2, _ = generate()
        assert_same(ck, ck2, "weights")
        assert_same(cases_file(clip, cases), cases_file(clip2, cases2))
        determinism = (f"two in-process generations with {args.threads} thread(s) are identical (every weight, "
                       "every recorded tensor and value)")
        print("determinism:", determinism, flush=True)

    only_ours, only_ref = compare_key_patterns(ck, KEY_LIST)
    print("key patterns only in ours:", only_ours, "| only in the full-size list:", only_ref, flush=True)

    ck_path = os.path.join(out_dir, "sam3.pt")
    torch.save(checkpoint_for_saving(ck), ck_path)
    write_config(os.path.join(out_dir, "config.json"))
    torch.save(cases_file(clip, cases), os.path.join(out_dir, "cases.pt"))

    # round trip: a freshly built model loaded from the written sam3.pt reproduces cases.pt
    fresh = load_official_checkpoint(build_tiny_concepts(), ck_path)
    _, clip3, again, _ = generate(fresh)
    reloaded = torch.load(os.path.join(out_dir, "cases.pt"), weights_only=True)
    assert_same(reloaded, cases_file(clip3, again))
    print("round trip: sam3.pt loaded into a fresh model reproduces cases.pt exactly", flush=True)

    with open(ck_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    sizes = {n: os.path.getsize(os.path.join(out_dir, n)) for n in ("sam3.pt", "config.json", "cases.pt")}
    meta = build_meta(cases, clip, ck, secs, args.threads, determinism, sha, only_ours, only_ref, sizes)
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    total = 0
    for n in sorted(os.listdir(out_dir)):
        s = os.path.getsize(os.path.join(out_dir, n))
        total += s
        print(f"{n:14s} {s / 1e6:7.3f} MB")
    print(f"total          {total / 1e6:7.3f} MB")
    for name, c in meta["cases"].items():
        print(name, json.dumps(c["events"]))
        print("   margins", json.dumps(c["margins"]))


if __name__ == "__main__":
    main()
