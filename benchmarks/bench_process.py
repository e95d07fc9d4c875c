"""(d) Load from a safetensors checkpoint to a ready model, and (e) peak memory for one image with a text prompt.

Each measurement runs in a fresh child process (peak RSS from ``resource.getrusage`` in the child); children of
the two implementations alternate. The checkpoint is a random-weight facebook/sam3-layout folder written once by
``make_checkpoint.py`` into ``.bench/`` (page cache warmed before timing: both sides read from memory). sam3kit is
byte-compiled before the children run, as ``pip install`` leaves an installed package (transformers' bytecode is
compiled at its install), so neither side compiles sources inside the timed load.

(d) sam3kit: ``sam3kit.load(dir)`` (the whole model: detector + tracker, memory-mapped, strict);
    transformers: ``Sam3VideoModel.from_pretrained(dir)`` (the same complete checkpoint). Times exclude the
    interpreter start and ``import torch``; the import of each library is reported separately.
(e) sam3kit: ``load`` + ``ImagePredictor.set_image`` (a 1008 x 1008 uint8 image) + ``segment(text=...)``;
    transformers: ``Sam3Model.from_pretrained(dir)`` (detector only) + ``Sam3Model(pixel_values, input_ids)``.
    Reported: peak RSS of the child.
"sam3kit-int8" (with ``--fast int8``) is ``load(fast="int8")``.

    python benchmarks/bench_process.py [--config tiny] [--which d|e|both] [--fast int8]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

TARGETS = {"d": 0.2, "e": 0.8}


# ---------------------------------------------------------------------- child side
def child(impl: str, task: str, ckpt: str, fast: str) -> dict:
    import resource

    import torch

    out: dict = {}
    if impl.startswith("sam3kit"):
        t0 = time.perf_counter()
        import sam3kit

        out["import_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = sam3kit.load(ckpt, fast=(fast if impl.endswith("int8") else None))
        out["load_s"] = time.perf_counter() - t0
        if task == "memory":
            import numpy as np

            S = model.config.image_size
            rng = np.random.default_rng(0)
            image = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
            pred = sam3kit.ImagePredictor(model)
            t0 = time.perf_counter()
            pred.set_image(image)
            pred.segment(text="a yellow school bus")
            out["run_s"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        import transformers

        out["import_s"] = time.perf_counter() - t0
        common._patch_hf_roi_align()
        t0 = time.perf_counter()
        if task == "load":
            model = transformers.Sam3VideoModel.from_pretrained(ckpt)
        else:
            model = transformers.Sam3Model.from_pretrained(ckpt)
        model.eval()
        out["load_s"] = time.perf_counter() - t0
        if task == "memory":
            cfg = model.config
            S = cfg.vision_config.backbone_config.image_size
            g = torch.Generator().manual_seed(0)
            pixels = torch.rand(1, 3, S, S, generator=g) * 2 - 1
            L = cfg.text_config.max_position_embeddings
            ids = torch.randint(1, 1000, (1, L), generator=g)
            mask = (torch.arange(L)[None] < 6).long()
            t0 = time.perf_counter()
            with torch.inference_mode():
                model(pixel_values=pixels, input_ids=ids, attention_mask=mask)
            out["run_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


# ---------------------------------------------------------------------- parent side
def run_child(impl: str, task: str, ckpt: Path, fast: str, threads) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, "--task", task, "--checkpoint", str(ckpt), "--fast", fast]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"{impl} {task} child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _warm(ckpt: Path) -> None:
    for f in ckpt.iterdir():
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def _byte_compile_sam3kit() -> str:
    """Compile sam3kit's modules to bytecode, as ``pip install`` does for an installed package (transformers' are
    compiled at its install). An editable install run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile
    sam3kit's sources in every child, inside the timed load (its submodules are imported lazily)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("sam3kit")
    where = list(spec.submodule_search_locations or []) if spec else []
    ok = all(compileall.compile_dir(d, quiet=1) for d in where)
    return "sam3kit byte-compiled before the children ran" if where and ok else "sam3kit not byte-compiled"


def measure(args, task: str, ckpt: Path) -> dict:
    impls = ["sam3kit", "transformers"] + (["sam3kit-int8"] if args.fast == "int8" else [])
    runs: dict[str, list[dict]] = {i: [] for i in impls}
    env = common.environment()
    env["bytecode"] = _byte_compile_sam3kit()
    _warm(ckpt)
    env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
    for _ in range(args.reps):
        for impl in impls:
            runs[impl].append(run_child(impl, task, ckpt, args.fast, args.threads))
    key = "load_s" if task == "load" else "peak_rss_mb"
    timings = {i: {**common.stats([r[key] for r in rs]),
                   **{f"median_{k}": sorted(r[k] for r in rs)[len(rs) // 2] for k in rs[0] if k != key}}
               for i, rs in runs.items()}
    if task == "memory":  # stats of RSS, not seconds
        timings = {i: {k.replace("_s", "_mb") if k in ("min_s", "median_s", "max_s", "all_s") else k: v
                       for k, v in t.items()} for i, t in timings.items()}
    extra = {"checkpoint_gb": round(sum(f.stat().st_size for f in ckpt.iterdir()) / 1e9, 2),
             "reps_are": "child processes"}
    k = "median_s" if task == "load" else "median_mb"
    for name in impls[2:]:
        extra[f"ratio_median_{name}"] = timings[name][k] / timings["transformers"][k]
    bench = "d_load" if task == "load" else "e_peak_rss_image_text"
    if task == "memory":
        return common.finish(args, bench, timings, env, target=TARGETS["e"], extra=extra, accuracy={},
                             key="median_mb")
    return common.finish(args, bench, timings, env, target=TARGETS["d"], extra=extra,
                         accuracy={"note": "same checkpoint; outputs compared in (a)-(c)"})


def main(argv=None) -> list[dict]:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--which", choices=("d", "e", "both"), default="both")
    p.add_argument("--fast", choices=("none", "int8"), default="none")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: .bench/sam3-random-<config>")
    p.add_argument("--child", default=None, help=argparse_hidden())
    p.add_argument("--task", default=None, help=argparse_hidden())
    args = p.parse_args(argv)
    if args.child:
        common.setup(args)
        print(json.dumps(child(args.child, args.task, str(args.checkpoint), args.fast)))
        return []
    from make_checkpoint import make

    ckpt = args.checkpoint or make(args.config, common.BENCH_DIR / f"sam3-random-{args.config}", args.seed)
    out = []
    if args.which in ("d", "both"):
        out.append(measure(args, "load", ckpt))
    if args.which in ("e", "both"):
        out.append(measure(args, "memory", ckpt))
    return out


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
