"""Shared pieces of the benchmark scripts: environment record, load waiting, timing, random weights, and the
transformers reference models built with the SAME weights as ours.

Every script appends one JSON line per run to ``benchmarks/results.jsonl`` (``--out``); see the "Speed" section of
README.md for the command of each row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results.jsonl"
BENCH_DIR = ROOT / ".bench"  # git-ignored: random checkpoints written for the load / memory benchmarks


# ---------------------------------------------------------------------- command line
def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", choices=("released", "tiny"), default="released",
                   help="model size (default: released; CI uses tiny)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per implementation (default: 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per implementation (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random weights and inputs (default: 0)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--max-load", type=float, default=0.5,
                   help="wait until the 1-minute load average is below this before timing (default: 0.5)")
    p.add_argument("--wait-timeout", type=float, default=1800.0,
                   help="give up waiting for a quiet machine after this many seconds and run anyway (default: 1800)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON-lines file to append to (default: {DEFAULT_OUT})")
    p.add_argument("--note", default="", help="free text stored in the record")
    return p


def setup(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)


# ---------------------------------------------------------------------- environment
def _git(*cmd: str) -> str:
    try:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    name = re.search(r"model name\s*:\s*(.*)", text)
    flags = re.search(r"flags\s*:\s*(.*)", text)
    fl = set(flags.group(1).split()) if flags else set()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile") if f in fl]
    return f"{name.group(1) if name else '?'} ({os.cpu_count()} cores; {' '.join(simd)})"


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def environment() -> dict[str, Any]:
    import numpy

    import sam3kit

    versions = {"python": platform.python_version(), "sam3kit": sam3kit.__version__, "torch": torch.__version__,
                "numpy": numpy.__version__}
    for mod in ("transformers", "onnxruntime"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else ""), "versions": versions,
            "threads": torch.get_num_threads(), "cpu": _cpu(), "load_avg_1m_start": load_average(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def wait_for_quiet(max_load: float, timeout: float, poll: float = 10.0) -> float:
    """Sleep until the 1-minute load average is below ``max_load`` (or ``timeout`` passed); returns the load."""
    deadline = time.monotonic() + timeout
    load = load_average()
    while load >= max_load and time.monotonic() < deadline:
        print(f"  load {load:.2f} >= {max_load}: waiting", file=sys.stderr, flush=True)
        time.sleep(poll)
        load = load_average()
    return load


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a host clock read after it times the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stats(times: list[float]) -> dict[str, Any]:
    return {"min_s": min(times), "median_s": statistics.median(times), "max_s": max(times), "n": len(times),
            "all_s": [round(t, 4) for t in times]}


def timed_interleaved(fns: dict[str, Callable[[], Any]], warmup: int, reps: int) -> dict[str, dict[str, Any]]:
    """Run each implementation ``warmup`` times, then ``reps`` rounds in which every implementation runs once
    (interleaved, so that a change of machine load hits all of them alike). Returns ``stats`` per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: stats(v) for k, v in times.items()}


def append(out: Path, record: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")
    print(json.dumps(record, indent=1))


def ratio(a: dict[str, Any], b: dict[str, Any], key: str = "median_s") -> float:
    return a[key] / b[key]


def paired_ratios(timings: dict[str, dict[str, Any]], ref: str = "transformers") -> dict[str, float]:
    """Per implementation, the median over rounds of its time (or memory) divided by ``ref``'s in the same round.

    The runs are interleaved, so a round's two values were taken minutes apart at most: when the machine's speed
    drifts during a run (it does here, by 10-20 %), this is steadier than the ratio of the medians."""
    if ref not in timings:
        return {}
    out = {}
    for name, t in timings.items():
        key = "all_s" if "all_s" in t else "all_mb"
        base = timings[ref].get(key)
        if name == ref or not base or len(t.get(key, ())) != len(base):
            continue
        out[name] = statistics.median(a / b for a, b in zip(t[key], base))
    return out


# ---------------------------------------------------------------------- models
def config(name: str):
    from sam3kit.config import Sam3Config

    return Sam3Config.released() if name == "released" else Sam3Config.tiny()


def randomize(model: torch.nn.Module, seed: int, std: float = 0.02) -> torch.nn.Module:
    """Deterministic random weights: N(0, std) matrices, norm weights 1 + noise, small biases.

    Speed does not depend on the values; accuracy figures do (see benchmarks/README.md). The prompt encoder's
    Fourier matrix is N(0, 1) as in the real model.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if not p.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            is_norm = leaf == "weight" and p.dim() == 1 and "norm" in name
            if is_norm:
                p.copy_(1.0 + 0.02 * torch.randn(p.shape, generator=g))
            elif name.endswith("positional_embedding") and "prompt_encoder" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif p.dim() <= 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.normal_(0.0, std, generator=g)
    return model


def random_model(cfg, seed: int):
    """A random-weight model with the speed features ``sam3kit.load`` applies by default (the CPU set on the CPU),
    so that the benchmarks time the path users get."""
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.speed import SpeedOptions, apply_speed

    return apply_speed(randomize(Sam3Model(cfg), seed).eval().requires_grad_(False), SpeedOptions())


def hf_state(model) -> dict[str, torch.Tensor]:
    """Our state dict under transformers' names (CLIP attention output ``o_proj`` -> ``out_proj``)."""
    return {re.sub(r"(text_encoder\..*self_attn)\.o_proj", r"\1.out_proj", k): v for k, v in model.state_dict().items()}


def _share_weights(hf: torch.nn.Module, state: dict[str, torch.Tensor], *, strict: bool) -> None:
    """Point the reference's parameters at our tensors (no copy: the same memory, the same values)."""
    result = hf.load_state_dict(state, strict=strict, assign=True)
    if not strict:
        missing = [k for k in result.missing_keys if not k.startswith("vision_encoder.")]
        if missing:
            raise RuntimeError(f"reference tensors without a counterpart in ours: {missing[:5]}")


def _patch_hf_roi_align() -> None:
    """transformers' geometry encoder calls ``torchvision.ops.roi_align``; without a working torchvision (the
    PyPI wheel is CUDA-built here) our ``sam3kit.ops.roi_align`` stands in (same definition, tested against
    torchvision's). It pools one box per prompt: a negligible part of the timed work."""
    import transformers.models.sam3.modeling_sam3 as hf_sam3
    from types import SimpleNamespace

    try:
        import torchvision.ops  # noqa: F401
        return
    except Exception:
        pass
    from sam3kit.ops.roi_align import roi_align

    def tv_roi_align(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
        out = roi_align(features, torch.stack(list(boxes)), output_size, spatial_scale=spatial_scale,
                        sampling_ratio=sampling_ratio, aligned=aligned)
        return out.flatten(0, 1)

    hf_sam3.torchvision = SimpleNamespace(ops=SimpleNamespace(roi_align=tv_roi_align))


def hf_detector(model):
    """transformers ``Sam3Model`` (the detector) with our weights; ViT LayerNorm eps 1e-5 as in the official
    model (our ``to_hf_dict`` writes it)."""
    import transformers

    _patch_hf_roi_align()

    cfg = model.config.to_hf_dict()["detector_config"]
    hf = transformers.Sam3Model(transformers.Sam3Config(**cfg)).eval().requires_grad_(False)
    sd = {k[len("detector_model."):]: v for k, v in hf_state(model).items() if k.startswith("detector_model.")}
    _share_weights(hf, sd, strict=True)
    return hf


def hf_tracker(model):
    """transformers ``Sam3TrackerModel`` (interactive single image) with our weights (ViT = the detector's, neck =
    ``tracker_neck``), as transformers' conversion mapping does for facebook/sam3."""
    import transformers

    full = model.config.to_hf_dict()["tracker_config"]
    keep = ("vision_config", "prompt_encoder_config", "mask_decoder_config")
    hf = transformers.Sam3TrackerModel(transformers.Sam3TrackerConfig(**{k: full[k] for k in keep}))
    hf = hf.eval().requires_grad_(False)
    ours = model.state_dict()
    sd = {}
    for k, v in ours.items():
        if k.startswith("tracker_model."):
            sd[k[len("tracker_model."):]] = v
        elif k.startswith("detector_model.vision_encoder.backbone."):
            sd["vision_encoder.backbone." + k[len("detector_model.vision_encoder.backbone."):]] = v
        elif k.startswith("tracker_neck."):
            sd["vision_encoder.neck." + k[len("tracker_neck."):]] = v
    hf_keys = set(hf.state_dict())
    _share_weights(hf, {k: v for k, v in sd.items() if k in hf_keys}, strict=True)
    return hf


def random_pixels(size: int, seed: int) -> torch.Tensor:
    """(1, 3, S, S) pixels in [-1, 1] (a smooth random image: speed does not depend on the content)."""
    g = torch.Generator().manual_seed(10_000 + seed)
    low = torch.rand(1, 3, 16, 16, generator=g)
    img = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return (img + 0.1 * torch.rand(1, 3, size, size, generator=g)).clamp(0, 1) * 2 - 1


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()


def finish(args, bench: str, timings: dict[str, dict], env: dict, *, target: Optional[float], extra: dict,
           accuracy: dict, ours: str = "sam3kit", ref: str = "transformers", key: str = "median_s") -> dict[str, Any]:
    """Assemble, append and return the JSON record of one run (``key``: the statistic the ratio compares)."""
    r = ratio(timings[ours], timings[ref], key) if ours in timings and ref in timings else None
    record = {
        "bench": bench, "config": args.config, **env, "load_avg_1m_end": load_average(),
        "dtype": extra.pop("dtype", "float32"), "timings": timings, "ratio_median": r,
        "ratio_paired": paired_ratios(timings, ref),
        "target_ratio": target, "target_met": (r is not None and target is not None and r <= target),
        "accuracy": accuracy, "peak_rss_mb_process": peak_rss_mb(), **extra, "note": args.note,
    }
    append(args.out, record)
    return record
