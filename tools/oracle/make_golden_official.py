"""Generate golden files from Meta's official SAM 3 package (PyPI ``sam3==0.1.4``).

This script is NOT part of the ``sam3kit`` package and is NOT run by CI. It runs the official
reference implementation (CPU, fp32, tiny random weights) and freezes its inputs and outputs under
``tests/golden/official/`` so that CI can compare ``sam3kit`` against the official semantics without
installing the (patched) official package. The work is done by the ``golden`` package beside this script
(the tiny model, its checkpoint and config, one module per family of cases, ``meta.json``); this file is the
command line.

How to run
----------
It needs a separate virtual environment *outside* the project with the patched official package (the "oracle
environment"), and the folder of CPU shims that belongs to that environment, not to this project
(``../shared/oracle`` relative to the checkout; its ``README.md`` gives the full set-up):

    python3 -m venv /root/oracle-venv && . /root/oracle-venv/bin/activate
    pip install torch==2.13.0 transformers==5.23.0 safetensors pillow      # torch 2.13.0 CPU build from local disk
    pip install torch==2.13.0 torchvision==0.28.0
    python ../shared/oracle/patch_torchvision_cpu.py "$(python -c 'import site; print(site.getsitepackages()[0])')"
    pip install --no-deps sam3==0.1.4
    pip install torch==2.13.0 timm ftfy regex iopath einops pycocotools psutil scikit-image

then, from the repository root:

    PYTHONPATH=../shared/oracle /root/oracle-venv/bin/python tools/oracle/make_golden_official.py \
        [--out tests/golden/official] [--check-determinism] [--skip-hf-check]

``PYTHONPATH`` must point at that shim folder of the oracle environment: it holds ``sam3_cpu_env.py`` (CPU shims
for the official package, imported before any ``sam3`` import), the CLIP BPE vocabulary and
``convert_official_to_hf.py`` (used only to verify that ``config.json`` matches the weights). The key patterns are
compared with the full-size checkpoint's list in the project's ``tests/data/keys_official_sam3pt_layout.txt``.

What it writes: ``sam3.pt`` (tiny random weights in the official ``sam3.pt`` key layout), ``config.json``
(the same architecture in the Hugging Face ``facebook/sam3`` config format), ``cases.pt`` (inputs and
official outputs, plain tensors/lists/floats only) and ``meta.json`` (descriptions, versions, tolerances).
See ``tests/golden/official/README.md``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import time

import torch

import golden  # noqa: F401  (imports the oracle environment's CPU shims before any sam3 module)
from golden.builder import build_tiny_official, randomise
from golden.cases import CASE_DOCS, run_cases
from golden.checkpoint import (checkpoint_for_saving, compare_key_patterns, load_official_checkpoint,
                               to_official_layout)
from golden.hf_config import verify_hf, write_hf_config
from golden.meta import build_meta

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KEY_LIST = os.path.join(REPO, "tests", "data", "keys_official_sam3pt_layout.txt")


def generate():
    t0 = time.time()
    model = build_tiny_official()
    randomise(model)
    ck = to_official_layout(model.state_dict())
    cases = run_cases(model)
    return model, ck, cases, time.time() - t0


def _digest(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "official"))
    ap.add_argument("--check-determinism", action="store_true", help="generate twice in-process and compare bitwise")
    ap.add_argument("--skip-hf-check", action="store_true")
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    _, ck, cases, secs = generate()
    print(f"generated in {secs:.1f} s", flush=True)
    if args.check_determinism:
        _, ck2, cases2, _ = generate()
        assert _digest(ck) == _digest(ck2), "weights differ between two runs"
        assert _digest(cases) == _digest(cases2), "cases differ between two runs"
        print("determinism: two in-process generations are bitwise identical", flush=True)

    only_ours, only_ref = compare_key_patterns(ck, KEY_LIST)
    print("key patterns only in ours:", only_ours, "| only in the full-size list:", only_ref, flush=True)

    torch.save(checkpoint_for_saving(ck), os.path.join(out_dir, "sam3.pt"))
    cfg_path = os.path.join(out_dir, "config.json")
    write_hf_config(cfg_path)
    hf_check = None
    if not args.skip_hf_check:
        hf_check = verify_hf(checkpoint_for_saving(ck), cfg_path, cases)
        print("HF check:", {k: (v if not isinstance(v, list) else len(v)) for k, v in hf_check.items()}, flush=True)
        assert not (hf_check["missing"] or hf_check["unexpected"] or hf_check["shape_mismatch"]), hf_check
    torch.save(cases, os.path.join(out_dir, "cases.pt"))

    # round trip: a freshly built (not randomised) model loaded from the written sam3.pt reproduces cases.pt
    fresh = load_official_checkpoint(build_tiny_official(), os.path.join(out_dir, "sam3.pt"))
    reloaded = torch.load(os.path.join(out_dir, "cases.pt"), weights_only=True)
    assert _digest(run_cases(fresh)) == _digest(reloaded), "sam3.pt does not reproduce cases.pt"
    print("round trip: sam3.pt loaded into a fresh model reproduces cases.pt bitwise", flush=True)

    meta = build_meta(cases, CASE_DOCS, ck, hf_check, only_ours, only_ref, secs)
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    total = 0
    for n in sorted(os.listdir(out_dir)):
        s = os.path.getsize(os.path.join(out_dir, n))
        total += s
        print(f"{n:14s} {s / 1e6:7.3f} MB")
    print(f"total          {total / 1e6:7.3f} MB")


if __name__ == "__main__":
    main()
