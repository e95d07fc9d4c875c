"""(i) The ONNX export through ONNX Runtime's CPU provider against ``ImagePredictor`` (fp32 and int8) in one run.

Four implementations of the same random-weight checkpoint (``make_checkpoint.py``, shared with (d)/(e)):
"sam3kit" (``ImagePredictor`` on ``sam3kit.load(ckpt)``: the CPU speed set), "sam3kit-int8"
(``load(fast="int8")``), "onnx" (``sam3kit.onnx.OnnxPredictor`` on the export of that checkpoint) and "onnx-int8"
(``OnnxPredictor(precision="int8")``: the int8 vision encoder of ``--int8``). The export is written once into
``.bench/`` (``sam3kit.onnx.export_onnx(..., int8=True)``; its time is recorded when this run writes it) and reused.
ONNX Runtime gets torch's thread count (``--threads``, else torch's default). In the speed rows "onnx-int8" uses the
sessions "onnx" opened for the graphs they share (text encoder, detector, prompt decoder: the same fp32 files), so
that the four predictors fit in memory together.

Rows, one record each (times interleaved over the implementations, as the other scripts):
- ``i_onnx_vision_encode``: ``set_image`` of an S x S uint8 image (no encoding cache: every call encodes);
- ``i_onnx_text_prompt``: ``segment(text=...)`` on the set image, a new text each call (text encoder + detector;
  ``ImagePredictor`` keeps the per-image prompt terms after its first prompt, the detector graph computes them
  every time);
- ``i_onnx_click``: ``predict(points=[one click])`` (3 masks, hole filling, upsampling to the image size);
- ``i_onnx_load_and_memory``: in a fresh child process per implementation and repetition: load to a ready
  predictor (for ONNX: every session opened) and the peak RSS (``VmHWM``) after ``set_image`` + ``segment`` +
  ``predict``; the ONNX children do not import torch.
Accuracy beside each row: against "sam3kit" fp32 (features max abs diff, score differences, mask IoU) for "onnx",
and the int8 paths against their fp32 counterparts (feature cosine, mask IoU, score differences). ``ratio_median``
is onnx / sam3kit (fp32); ``ratio_paired`` gives every implementation against sam3kit.

    python benchmarks/bench_onnx.py [--config tiny] [--which speed|process|both] [--reps 3]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
TEXTS = ["a yellow school bus", "a red car", "a dog", "the person on the left", "a tree", "a cup of coffee",
         "a bicycle", "a window", "a white cat", "a traffic light", "a blue chair", "a laptop", "a flower",
         "an orange", "a bird", "a boat", "a clock", "a book", "a shoe", "a bottle"]
IMPLS = ("sam3kit", "onnx", "sam3kit-int8", "onnx-int8")  # sam3kit and onnx first: the ratios are onnx / sam3kit


# ---------------------------------------------------------------------- building the four predictors
def predictor(impl: str, ckpt: Path, export: Path, threads: int, sessions: Optional[dict] = None):
    """A ready predictor of ``impl`` (for ONNX: every session opened; ``sessions``: graph name -> an open session
    of another predictor of the same export to use)."""
    if impl.startswith("onnx"):
        from sam3kit.onnx import OnnxPredictor

        p = OnnxPredictor(export, precision="int8" if impl.endswith("int8") else "fp32", threads=threads)
        p._sessions.update(sessions or {})
        for name in p.manifest.graph_names():
            p.session(name)
        return p
    import sam3kit

    model = sam3kit.load(ckpt, fast="int8" if impl.endswith("int8") else None)
    return sam3kit.ImagePredictor(model, cache=sam3kit.EncodingCache(max_items=0))


def test_image(size: int):
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


def features(p) -> dict:
    """The vision outputs of the current image under the graph names, as float32 arrays."""
    if hasattr(p, "manifest"):
        return dict(p._image.features)
    det, trk = p.detector_features(), p.tracker_features()
    out = {f"detector_embeddings.{i}": f for i, f in enumerate(det.fpn)}
    out.update({"image_embeddings.0": trk.high_res[0], "image_embeddings.1": trk.high_res[1],
                "image_embeddings.2": trk.embed})
    return {k: v.detach().float().numpy() for k, v in out.items()}


# ---------------------------------------------------------------------- child side (load and memory)
def child(impl: str, ckpt: str, export: str, threads: int) -> dict:
    t0 = time.perf_counter()
    p = predictor(impl, Path(ckpt), Path(export), threads)
    out = {"load_s": time.perf_counter() - t0}
    image = test_image(p.dims.image_size if hasattr(p, "dims") else p.model.config.image_size)
    t0 = time.perf_counter()
    p.set_image(image)
    p.segment(text=TEXTS[0])
    p.predict(points=[[image.shape[1] * 0.37, image.shape[0] * 0.61]])
    out["run_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    out["torch_imported"] = "torch" in sys.modules
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB: ``VmHWM`` of /proc/self/status (the high-water mark of this
    address space: a child's ``ru_maxrss`` starts from its parent's peak at the fork, on Linux), else
    ``ru_maxrss``."""
    import re
    import resource

    try:
        return int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024.0
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(impl: str, ckpt: Path, export: Path, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, "--checkpoint", str(ckpt), "--export", str(export),
           "--threads", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
                       timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"{impl} child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- parent side
def _iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def _cos(a, b) -> float:
    import numpy as np

    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


PAIRS = {"onnx_vs_sam3kit": ("onnx", "sam3kit"), "int8_onnx_vs_onnx": ("onnx-int8", "onnx"),
         "int8_sam3kit_vs_sam3kit": ("sam3kit-int8", "sam3kit")}


def accuracy(preds: dict, image) -> dict:
    """The comparisons of the record: onnx vs sam3kit (fp32), and each int8 path vs its fp32 counterpart."""
    import numpy as np

    for p in preds.values():
        p.set_image(image)
    feats = {k: features(p) for k, p in preds.items()}
    seg = {k: p.segment(text=TEXTS[0], threshold=0.0) for k, p in preds.items()}  # every query's mask
    click = [image.shape[1] * 0.37, image.shape[0] * 0.61]
    clk = {k: p.predict(points=[click]) for k, p in preds.items()}
    out = {}
    for name, (a, b) in PAIRS.items():
        if a not in preds or b not in preds:
            continue
        fa, fb = feats[a], feats[b]
        sa, sb = seg[a], seg[b]
        ca, cb = clk[a], clk[b]
        out[name] = {
            "features_max_abs_diff": max(float(np.abs(fa[k] - fb[k]).max()) for k in fb),
            "features_min_cosine": min(_cos(fa[k], fb[k]) for k in fb),
            "scores_max_abs_diff": float(np.abs(sa.scores - sb.scores).max()),
            "presence_abs_diff": abs(sa.presence - sb.presence),
            "boxes_max_abs_diff_px": float(np.abs(sa.boxes - sb.boxes).max()),
            "masks_min_iou": min((_iou(x, y) for x, y in zip(sa.masks, sb.masks)), default=1.0),
            "click_low_res_max_abs_diff": float(np.abs(ca.low_res_logits - cb.low_res_logits).max()),
            "click_iou_scores_max_abs_diff": float(np.abs(ca.iou_scores - cb.iou_scores).max()),
            "click_masks_min_iou": min(_iou(x, y) for x, y in zip(ca.masks, cb.masks)),
        }
    return out


def ensure_export(ckpt: Path, export: Path) -> dict:
    """Export ``ckpt`` into ``export`` (with the int8 vision encoder) unless an export of it is there."""
    import sam3kit
    from sam3kit.onnx import export_onnx
    from sam3kit.weights.fingerprint import checkpoint_fingerprint

    manifest = export / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        if (data.get("source", {}).get("fingerprint") == checkpoint_fingerprint(ckpt)
                and "int8" in data["graphs"]["vision_encoder"] and data.get("sam3kit_version") == sam3kit.__version__):
            return {"export": "reused", "export_dir": str(export)}
    t0 = time.perf_counter()
    model = sam3kit.load(ckpt, fast=sam3kit.SpeedOptions(cpu_kernels=False))
    export_onnx(model, export, int8=True, source=str(ckpt), overwrite=True)
    del model
    sizes = {f.name: round(f.stat().st_size / 2**20, 1) for f in sorted(export.glob("*.onnx*"))}
    return {"export": "written", "export_s": round(time.perf_counter() - t0, 1), "export_dir": str(export),
            "graph_mib": sizes}


def run_speed(args, common, ckpt: Path, export: Path, threads: int, extra: dict) -> list[dict]:
    from sam3kit.onnx.contract import INT8_GRAPHS

    preds = {}
    for impl in args.impls:
        # "onnx-int8" runs the very fp32 text, detector and prompt graphs of "onnx": one session each (memory)
        share = preds["onnx"]._sessions if impl == "onnx-int8" else {}
        preds[impl] = predictor(impl, ckpt, export, threads,
                                sessions={n: x for n, x in share.items() if n not in INT8_GRAPHS})
    image = test_image(preds["onnx"].dims.image_size)
    acc = accuracy(preds, image)
    nexts = {impl: iter(TEXTS[1:] * 4) for impl in args.impls}  # a new text every call, the same sequence for each
    click = [image.shape[1] * 0.37, image.shape[0] * 0.61]
    tasks = {
        "i_onnx_vision_encode": {k: (lambda p=p: p.set_image(image)) for k, p in preds.items()},
        "i_onnx_text_prompt": {k: (lambda p=p, k=k: p.segment(text=next(nexts[k]))) for k, p in preds.items()},
        "i_onnx_click": {k: (lambda p=p: p.predict(points=[click])) for k, p in preds.items()},
    }
    records = []
    for bench, fns in tasks.items():
        for p in preds.values():
            p.set_image(image)
        env = common.environment()
        env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
        timings = common.timed_interleaved(fns, args.warmup, args.reps)
        rec_extra = {**extra, "ort_threads": threads, "image": f"{image.shape[0]}x{image.shape[1]} uint8"}
        for name in args.impls[1:]:
            rec_extra[f"ratio_median_{name}"] = common.ratio(timings[name], timings["sam3kit"])
        records.append(common.finish(args, bench, timings, env, target=None, extra=rec_extra, accuracy=acc,
                                     ours="onnx", ref="sam3kit"))
    return records


def run_process(args, common, ckpt: Path, export: Path, threads: int, extra: dict) -> dict:
    runs: dict[str, list[dict]] = {i: [] for i in args.impls}
    env = common.environment()
    env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
    for _ in range(args.reps):
        for impl in args.impls:
            runs[impl].append(run_child(impl, ckpt, export, threads))
    timings = {}
    for impl, rs in runs.items():
        t = common.stats([r["load_s"] for r in rs])
        rss = sorted(r["peak_rss_mb"] for r in rs)
        t.update({"median_peak_rss_mb": rss[len(rs) // 2], "all_peak_rss_mb": rss,
                  "median_run_s": sorted(r["run_s"] for r in rs)[len(rs) // 2],
                  "torch_imported": any(r["torch_imported"] for r in rs)})
        timings[impl] = t
    rec_extra = {**extra, "ort_threads": threads, "reps_are": "child processes",
                 "timed": "load_s: load to a ready predictor; median_peak_rss_mb: after set_image + segment + "
                          "predict"}
    for name in args.impls[1:]:
        rec_extra[f"ratio_peak_rss_{name}"] = (timings[name]["median_peak_rss_mb"] /
                                               timings["sam3kit"]["median_peak_rss_mb"])
    return common.finish(args, "i_onnx_load_and_memory", timings, env, target=None, extra=rec_extra,
                         accuracy={"note": "same checkpoint; outputs compared in the speed rows"}, ours="onnx",
                         ref="sam3kit")


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if "--child" in argv:  # before importing common (and with it torch): the ONNX children stay torch-free
        import argparse

        p = argparse.ArgumentParser()
        for flag in ("--child", "--checkpoint", "--export", "--threads"):
            p.add_argument(flag)
        a = p.parse_args(argv)
        if not a.child.startswith("onnx"):
            import torch

            torch.set_num_threads(int(a.threads))
        print(json.dumps(child(a.child, a.checkpoint, a.export, int(a.threads))))
        return []
    sys.path.insert(0, str(HERE))
    import common
    from make_checkpoint import make

    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--which", choices=("speed", "process", "both"), default="both")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: .bench/sam3-random-<config>")
    p.add_argument("--export", type=Path, default=None, help="default: .bench/sam3-onnx-<config>")
    p.add_argument("--impls", default=",".join(IMPLS),
                   help=f"implementations to run, sam3kit and onnx first (default: {','.join(IMPLS)})")
    args = p.parse_args(argv)
    args.impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    if args.impls[:2] != ["sam3kit", "onnx"] or not set(args.impls) <= set(IMPLS):
        p.error(f"--impls: a list of {', '.join(IMPLS)} starting with sam3kit,onnx")
    common.setup(args)
    import torch

    threads = args.threads or torch.get_num_threads()
    ckpt = make(args.config, args.checkpoint or common.BENCH_DIR / f"sam3-random-{args.config}", args.seed)
    export = args.export or common.BENCH_DIR / f"sam3-onnx-{args.config}"
    extra = ensure_export(ckpt, export)
    out = []
    if args.which in ("process", "both"):  # first: this process stays small while the children run
        out.append(run_process(args, common, ckpt, export, threads, extra))
    if args.which in ("speed", "both"):
        out.extend(run_speed(args, common, ckpt, export, threads, extra))
    return out


if __name__ == "__main__":
    main()
