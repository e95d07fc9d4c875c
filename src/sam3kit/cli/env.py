"""``sam3kit env``: versions, devices, threads and the attention kernels PyTorch picks (paste it into bug reports)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

PACKAGES = ("torch", "numpy", "pillow", "safetensors", "tokenizers", "huggingface_hub", "pycocotools", "ftfy",
            "transformers")
# (what, head dim, additive mask): the attention shapes SAM 3 runs
SDPA_PROBES = (("ViT / CLIP (head 64)", 64, False), ("detector, tracker (head 32)", 32, False),
               ("detector with padding mask (head 32)", 32, True), ("memory attention (head 256)", 256, False))


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser("env", parents=[common], formatter_class=formatter,
                       help="versions, device, threads and attention kernels", description=__doc__)
    p.add_argument("--device", default="auto", help="device whose kernels are probed; auto = cuda if available")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16"), help="dtype the probes use")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def collect(device: str = "auto", dtype: str = "fp32") -> dict[str, Any]:
    """Everything ``env`` prints, as a dict."""
    import torch

    from .. import __version__
    from ..loading import parse_dtype
    from .device import resolve_device

    dev = resolve_device(device)
    facts: dict[str, Any] = {
        "sam3kit": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "packages": {n: _version(n) for n in PACKAGES},
        "torch_build": {"cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
                        "debug": torch.version.debug},
        "cuda": {"available": torch.cuda.is_available(), "devices": []},
        "mps": bool(hasattr(torch.backends, "mps") and torch.backends.mps.is_available()),
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "parallel_info": torch.__config__.parallel_info().strip().splitlines(),
        "cpu_capability": _cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "probe": {"device": dev, "dtype": dtype},
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            facts["cuda"]["devices"].append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                                             "memory_gib": round(p.total_memory / 2**30, 1)})
        facts["cuda"]["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        facts["cuda"]["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
        facts["cuda"]["cudnn"] = torch.backends.cudnn.version()
        facts["sdpa_enabled"] = {"flash": torch.backends.cuda.flash_sdp_enabled(),
                                 "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
                                 "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
                                 "math": torch.backends.cuda.math_sdp_enabled()}
    facts["sdpa"] = _sdpa_choices(torch.device(dev), parse_dtype(dtype))
    facts["kernels"] = {"roi_align": "sam3kit pure PyTorch (separable interpolation matrices)",
                        "attention": "torch.nn.functional.scaled_dot_product_attention"}
    return facts


def _cpu_capability() -> str:
    import torch

    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        return "unknown"


def _sdpa_choices(device, dtype) -> dict[str, str]:
    """The SDPA backend PyTorch's dispatcher picks for each probe shape (``torch._fused_sdp_choice``)."""
    import warnings

    import torch

    out = {}
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:
        return {"all": "unknown (torch too old to tell)"}
    for what, hd, masked in SDPA_PROBES:
        q = torch.zeros(1, 2, 64, hd, device=device, dtype=dtype)
        mask = torch.zeros(1, 1, 64, 64, device=device, dtype=dtype) if masked else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                choice = SDPBackend(int(torch._fused_sdp_choice(q, q, q, mask))).name.lower()
        except Exception as e:  # a private API: report rather than fail
            choice = f"unknown ({type(e).__name__})"
        out[what] = choice
    return out


def format_text(f: dict[str, Any]) -> str:
    lines = [f"sam3kit       {f['sam3kit']}", f"python        {f['python']}", f"platform      {f['platform']}"]
    lines += [f"{n:<13} {v}" for n, v in f["packages"].items()]
    b = f["torch_build"]
    lines.append(f"torch build   CUDA {b['cuda'] or 'none'}" + (f", HIP {b['hip']}" if b["hip"] else ""))
    c = f["cuda"]
    if c["available"]:
        for d in c["devices"]:
            lines.append(f"cuda:{d['index']:<8} {d['name']} (sm {d['capability']}, {d['memory_gib']} GiB)")
        lines.append(f"cudnn         {c['cudnn']}; TF32 matmul {c['tf32_matmul']}, cudnn {c['tf32_cudnn']}")
        lines.append("sdpa enabled  " + ", ".join(f"{k} {v}" for k, v in f["sdpa_enabled"].items()))
    else:
        lines.append("cuda          not available")
    lines.append(f"mps           {'available' if f['mps'] else 'not available'}")
    lines.append(f"cpu           {f['cpu_capability']}, mkldnn {f['mkldnn']}")
    lines.append(f"threads       intra-op {f['threads']['intra_op']}, inter-op {f['threads']['inter_op']}")
    lines += ["              " + s.strip() for s in f["parallel_info"] if s.strip() and not s.startswith("ATen/")]
    p = f["probe"]
    lines.append(f"attention kernels on {p['device']} ({p['dtype']}), as the SDPA dispatcher picks them:")
    lines += [f"  {k:<38} {v}" for k, v in f["sdpa"].items()]
    lines.append(f"roi_align     {f['kernels']['roi_align']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    facts = collect(args.device, args.dtype)
    print(json.dumps(facts, indent=2) if args.json else format_text(facts))
    return 0
