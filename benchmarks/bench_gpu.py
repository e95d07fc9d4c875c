"""(k) The image path on a GPU: sam3kit against transformers on the same device, fp32 and bf16, with and without
``torch.compile``, at the released size with random weights shared tensor for tensor.

Rows (``--rows``, each a JSON line ``gpu_<row>`` in ``--out``):

- ``encode``: pixels (B=1) -> the detector's image features. sam3kit ``Sam3Model.encode_image``; transformers
  ``Sam3Model.get_vision_features``. Accuracy: max abs diff of the three neck levels against transformers in the
  same dtype, and (bf16) the cosine of sam3kit's levels to its fp32 ones.
- ``text``: a text (6 tokens) + one box prompt on a cached encoding (the case where the official model and
  transformers agree), as row (b): sam3kit ``encode_text`` + ``forward_prompts`` on features holding the image terms
  (computed once per image, untimed); transformers ``Sam3Model(vision_embeds=..., input_ids=...)``.
- ``click``: one foreground click on a cached encoding, as row (c): ``Tracker.predict`` against
  ``Sam3TrackerModel(image_embeddings=...)``.
- ``e2e``: pixels -> detections (vision encode + the text prompt) at batch 1 and ``--batch`` (default 8), one prompt
  per image; transformers ``Sam3Model(pixel_values=..., input_ids=...)``.
- ``predictor`` (sam3kit only: the figure a user sees): ``ImagePredictor.set_image`` on a 1008 x 1008 uint8 array
  (upload, resize, normalise, the ViT) + ``segment(text=...)`` (tokenise, detect, threshold, masks at the image
  size), at the default threshold 0.5 and at threshold 0 (all 200 queries kept: the post-processing of the most
  objects). Recorded beside it: the objects found at each threshold and the top score (random weights: none
  passes 0.5, so the default-threshold figure is the least post-processing).

``--compile`` (a comma list of dtypes, default ``bf16``) also times ``torch.compile``'d forms of the encode and of
the batch-1 e2e call for both sides (default inductor mode, ``dynamic=False``; records ``gpu_encode_compile`` and
``gpu_e2e_b1_compile``, which time the plain forms again beside them). They run after every plain row of every
dtype, since compiling is the slow part (``--compile-only``: just them, for a separate last step). The compile time
of the first call is recorded, and a side that fails to compile is recorded with its error instead of a time
(graph breaks are not failures: the compiled function runs).

Timing: each call is followed by ``torch.cuda.synchronize()`` inside the timed region (host clock), the sides
interleaved round by round after ``--warmup`` untimed calls; medians over ``--reps``. Peak GPU memory: the
``max_memory_allocated`` of one call after a reset, above what was allocated before it. fp32 runs with TF32 off
(true fp32, as the parity tests run), bf16 with torch's default SDPA kernel choice. Targets:
sam3kit at most 0.8x transformers' time in bf16 for encode, text and click; one image with one text prompt end to
end (row ``e2e`` batch 1) at most 30 ms in bf16.

``--deadline-s`` stops before a row that would start after that many seconds (the rows not run are recorded in the
last record's ``skipped``), so that one device run fits its lease. ``--device cpu --config tiny`` tries the whole
script on a machine without a GPU.

    python benchmarks/bench_gpu.py [--device cuda] [--config released|tiny] [--dtypes fp32,bf16] [--compile bf16]
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402
from sam3kit.pipelines.text import trim_padding  # noqa: E402

ROWS = ("encode", "text", "click", "e2e", "predictor")
TARGET_RATIO = 0.8  # bf16, encode / text / click
TARGET_E2E_S = 0.030  # bf16, one image + one text prompt
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# ---------------------------------------------------------------------- device helpers
def device_facts(device: torch.device) -> dict[str, Any]:
    facts: dict[str, Any] = {"device": str(device), "torch_cuda": torch.version.cuda,
                             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        facts.update(device_name=p.name, capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
                     memory_gib=round(p.total_memory / 2 ** 30, 1))
        try:
            import subprocess

            facts["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                             capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    else:
        facts["device_name"] = common.environment()["cpu"]
    return facts


def timed(fns: dict[str, Callable[[], Any]], device: torch.device, warmup: int, reps: int) -> dict[str, dict]:
    """Interleaved rounds, each call synchronised inside its timed region; ``common.stats`` per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            common.sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            common.sync(device)
            t0 = time.perf_counter()
            fn()
            common.sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: common.stats(v) for k, v in times.items()}


def peak_memory(fns: dict[str, Callable[[], Any]], device: torch.device) -> dict[str, Optional[float]]:
    """MiB allocated at the peak of one call of each, above what was allocated before it (CUDA only)."""
    out: dict[str, Optional[float]] = {}
    for name, fn in fns.items():
        if device.type != "cuda":
            out[name] = None
            continue
        gc.collect()
        torch.cuda.empty_cache()
        common.sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        common.sync(device)
        out[name] = round((torch.cuda.max_memory_allocated(device) - base) / 2 ** 20, 1)
    return out


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().flatten().cpu(), b.detach().double().flatten().cpu()
    return float(a @ b / (a.norm() * b.norm()))


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = (a > 0).cpu(), (b > 0).cpu()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


# ---------------------------------------------------------------------- models and inputs
def build(cfg_name: str, seed: int, device: torch.device, dtype: torch.dtype):
    """Ours (the plain model ``sam3kit.load`` gives on this device) and the two transformers references sharing its
    tensors. Weights are drawn on the CPU (the same values for every dtype and device), then moved."""
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.speed import SpeedOptions, apply_speed

    model = common.randomize(Sam3Model(common.config(cfg_name)), seed).eval().requires_grad_(False)
    model = model.to(device=device, dtype=dtype)
    model = apply_speed(model, SpeedOptions(cpu_kernels=False))  # the CUDA path, also in a CPU trial
    with torch.device(device):  # the references initialise on the device (fast), then take our tensors
        det = common.hf_detector(model)
        trk = common.hf_tracker(model)
    return model, det.to(device=device, dtype=dtype), trk.to(device=device, dtype=dtype)


def pixels_for(model, batch: int, seed: int) -> torch.Tensor:
    px = common.random_pixels(model.config.image_size, seed)
    return px.expand(batch, -1, -1, -1).contiguous().to(device=model.device, dtype=model.dtype)


def text_inputs(model, batch: int, seed: int):
    cfg = model.config
    g = torch.Generator().manual_seed(20_000 + seed)
    L = cfg.detector.text.context_length
    ids = torch.randint(1, cfg.detector.text.vocab_size - 2, (1, L), generator=g).expand(batch, -1)
    valid = (torch.arange(L)[None] < 6).expand(batch, -1)
    box = torch.tensor([[[0.45, 0.55, 0.3, 0.25]]]).expand(batch, -1, -1)
    dev = model.device
    return ids.to(dev), valid.to(dev), box.to(device=dev, dtype=model.dtype)


# ---------------------------------------------------------------------- rows
def row_encode(ctx) -> tuple[dict, dict, dict]:
    model, hf = ctx.model, ctx.det
    px = pixels_for(model, 1, ctx.seed)
    fns = {"sam3kit": lambda: model.encode_image(px, detector=True),
           "transformers": lambda: hf.get_vision_features(pixel_values=px)}
    ours = model.encode_image(px, detector=True).detector.fpn
    ref = hf.get_vision_features(pixel_values=px).fpn_hidden_states
    acc = {"fpn_max_abs_diff_vs_transformers": max(common.max_abs_diff(a, b) for a, b in zip(ours, ref)),
           "fpn_abs_max": max(a.abs().max().item() for a in ours)}
    ctx.keep("encode_fpn", [a.float().cpu() for a in ours])
    if ctx.base("encode_fpn") is not None and model.dtype != torch.float32:
        acc["fpn_cosine_min_vs_sam3kit_fp32"] = min(cosine(a, b) for a, b in zip(ours, ctx.base("encode_fpn")))
    extra = {}
    if ctx.compile:
        fns.update(ctx.compiled({"sam3kit-compile": lambda: model.encode_image(px, detector=True),
                                 "transformers-compile": lambda: hf.get_vision_features(pixel_values=px)}, extra))
    return fns, acc, extra


def row_text(ctx) -> tuple[dict, dict, dict]:
    model, hf = ctx.model, ctx.det
    det = model.detector_model
    px = pixels_for(model, 1, ctx.seed)
    ids, valid, box = text_inputs(model, 1, ctx.seed)
    feats = det.with_image_terms(model.encode_image(px, detector=True).detector)
    vo = hf.get_vision_features(pixel_values=px)
    cut = trim_padding(ids, ~valid)

    def ours():
        return det.forward_prompts(feats, det.encode_text(*cut), box, masks=True, semantic=False)

    def ref():
        return hf(vision_embeds=vo, input_ids=ids, attention_mask=valid.long(), input_boxes=box)

    a, b = ours(), ref()
    acc = {"logits_max_abs_diff_vs_transformers": common.max_abs_diff(a.logits, b.pred_logits),
           "boxes_max_abs_diff_vs_transformers": common.max_abs_diff(a.boxes, b.pred_boxes),
           "masks_max_abs_diff_vs_transformers": common.max_abs_diff(a.mask_logits, b.pred_masks),
           "masks_abs_max": b.pred_masks.abs().max().item()}
    acc.update(ctx.against_fp32("text", a))
    return {"sam3kit": ours, "transformers": ref}, acc, {"prompt": "text (6 tokens) + 1 box"}


def row_click(ctx) -> tuple[dict, dict, dict]:
    model, hf = ctx.model, ctx.trk
    S = model.config.image_size
    px = pixels_for(model, 1, ctx.seed)
    trunk = model.image_trunk(px)
    feats = model.tracker_features(trunk)
    emb = [feats.high_res[0], feats.high_res[1], feats.embed + hf.no_memory_embedding.view(1, -1, 1, 1)]
    pts = torch.tensor([[[0.37 * S, 0.61 * S]]], device=model.device)
    lab = torch.ones(1, 1, dtype=torch.long, device=model.device)

    def ours():
        return model.tracker_model.predict(feats, pts, lab, multimask=True)

    def ref():
        return hf(image_embeddings=emb, input_points=pts[:, None].to(model.dtype), input_labels=lab[:, None],
                  multimask_output=True)

    a, b = ours(), ref()
    acc = {"mask_logits_max_abs_diff_vs_transformers":
           common.max_abs_diff(a.mask_logits, b.pred_masks.flatten(0, 1).clamp(-32, 32)),
           "iou_max_abs_diff_vs_transformers": common.max_abs_diff(a.iou_scores, b.iou_scores.flatten(0, 1))}
    base = ctx.base("click")
    ctx.keep("click", a.mask_logits.float().cpu())
    if base is not None and model.dtype != torch.float32:
        acc["mask_iou_min_vs_sam3kit_fp32"] = min(mask_iou(a.mask_logits[0, m], base[0, m])
                                                  for m in range(base.shape[1]))
    return {"sam3kit": ours, "transformers": ref}, acc, {"prompt": "1 foreground click, multimask"}


def _e2e(ctx, batch: int) -> tuple[dict, dict, dict]:
    model, hf = ctx.model, ctx.det
    det = model.detector_model
    px = pixels_for(model, batch, ctx.seed)
    ids, valid, box = text_inputs(model, batch, ctx.seed)
    cut = trim_padding(ids, ~valid)

    def ours():
        feats = model.encode_image(px, detector=True).detector
        return det.forward_prompts(feats, det.encode_text(*cut), box, masks=True, semantic=False)

    def ref():
        return hf(pixel_values=px, input_ids=ids, attention_mask=valid.long(), input_boxes=box)

    a, b = ours(), ref()
    acc = {"logits_max_abs_diff_vs_transformers": common.max_abs_diff(a.logits, b.pred_logits),
           "masks_max_abs_diff_vs_transformers": common.max_abs_diff(a.mask_logits, b.pred_masks)}
    acc.update(ctx.against_fp32(f"e2e{batch}", a))
    fns = {"sam3kit": ours, "transformers": ref}
    extra = {"batch": batch, "prompt": "text (6 tokens) + 1 box per image"}
    if ctx.compile:
        fns.update(ctx.compiled({"sam3kit-compile": ours, "transformers-compile": ref}, extra))
    return fns, acc, extra


def row_predictor(ctx) -> tuple[dict, dict, dict]:
    import sam3kit
    from sam3kit.tokenizer import Sam3Tokenizer

    model = ctx.model
    S = model.config.image_size
    rng = np.random.default_rng(ctx.seed)
    low = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    image = np.kron(low, np.ones((S // 16 + 1, S // 16 + 1, 1), np.uint8))[:S, :S].copy()
    pred = sam3kit.ImagePredictor(model, tokenizer=Sam3Tokenizer.default(), cache=sam3kit.EncodingCache(max_items=0))

    def at(threshold):
        def run():
            pred.set_image(image)
            return pred.segment(text="a photo of a dog", threshold=threshold)
        return run

    r0 = at(0.0)()
    acc = {"objects_at_threshold_0": len(r0), "objects_at_threshold_0.5": len(at(0.5)()),
           "scores_max": float(r0.scores.max()) if len(r0) else None}
    return ({"sam3kit-predictor": at(0.5), "sam3kit-predictor-200-objects": at(0.0)}, acc,
            {"image": f"{S}x{S} uint8", "text": "a photo of a dog", "note_row": "no reference: the user-level call"})


class Context:
    """What the rows share for one dtype: the models, the fp32 outputs to compare against, compile handling."""

    def __init__(self, args, model, det, trk, fp32_outputs: dict, compile_on: bool) -> None:
        self.args, self.model, self.det, self.trk, self.seed = args, model, det, trk, args.seed
        self.fp32 = fp32_outputs
        self.compile = compile_on

    def keep(self, key: str, value) -> None:
        if self.model.dtype == torch.float32:
            self.fp32[key] = value

    def base(self, key: str):
        return self.fp32.get(key)

    def against_fp32(self, key: str, out) -> dict:
        """Detections of this dtype against sam3kit fp32's: score diff and the top-10 queries' mask IoU."""
        scores = (out.logits.float().sigmoid() * out.presence_logit.float().sigmoid()[:, None]).cpu()
        if self.model.dtype == torch.float32:
            self.fp32[key] = (scores, out.mask_logits.float().cpu())
            return {}
        if key not in self.fp32:
            return {}
        s32, m32 = self.fp32[key]
        top = s32[0].topk(min(10, s32.shape[1])).indices.tolist()
        m = out.mask_logits.float().cpu()
        return {"score_max_abs_diff_vs_sam3kit_fp32": common.max_abs_diff(scores, s32),
                "top10_mask_iou_mean_vs_sam3kit_fp32": sum(mask_iou(m[0, q], m32[0, q]) for q in top) / len(top)}

    def compiled(self, fns: dict[str, Callable[[], Any]], extra: dict) -> dict[str, Callable[[], Any]]:
        """``torch.compile`` each function; its first call (the compile) is timed into ``extra``; failures are
        recorded there and the function left out."""
        import logging

        torch._logging.set_logs(dynamo=logging.ERROR, inductor=logging.ERROR)  # graph-break reports are long
        out = {}
        for name, fn in fns.items():
            try:
                c = torch.compile(fn, dynamic=False)
                common.sync(self.model.device)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    c()
                common.sync(self.model.device)
                extra.setdefault("compile_s", {})[name] = round(time.perf_counter() - t0, 1)
                out[name] = c
            except Exception as e:  # noqa: BLE001 - recorded, the other sides still run
                extra.setdefault("compile_failed", {})[name] = f"{type(e).__name__}: {str(e)[:300]}"
        return out


def makers(args, row: str, compiled: bool) -> list[Callable]:
    """The record makers of a row (e2e: batch 1 and ``--batch``; in the compile pass, encode and e2e batch 1)."""
    if compiled:
        return {"encode": [row_encode], "e2e": [lambda c: _e2e(c, 1)]}.get(row, [])
    return {"encode": [row_encode], "text": [row_text], "click": [row_click],
            "e2e": [lambda c: _e2e(c, 1), lambda c: _e2e(c, args.batch)], "predictor": [row_predictor]}[row]


def run_record(args, ctx, make: Callable, row: str, env: dict, facts: dict, dtype_name: str) -> dict:
    with torch.inference_mode():
        fns, acc, extra = make(ctx)
        timings = timed(fns, ctx.model.device, args.warmup, args.reps)
        peaks = peak_memory(fns, ctx.model.device)
    med = {k: v["median_s"] for k, v in timings.items()}
    ratios = {k: med[k] / med[k.replace("sam3kit", "transformers")] for k in med
              if k.startswith("sam3kit") and k.replace("sam3kit", "transformers") in med}
    target = None
    if row in ("encode", "text", "click") and dtype_name == "bf16":
        target = {"ratio_at_most": TARGET_RATIO, "met": ratios.get("sam3kit", 9e9) <= TARGET_RATIO}
    if row == "e2e" and extra.get("batch") == 1 and dtype_name == "bf16":
        best = min(v for k, v in med.items() if k.startswith("sam3kit"))
        target = {"seconds_at_most": TARGET_E2E_S, "met": best <= TARGET_E2E_S, "best_sam3kit_s": best}
    name = f"gpu_{row}" + (f"_b{extra['batch']}" if "batch" in extra else "") + ("_compile" if ctx.compile else "")
    rec = {"bench": name, "config": args.config, **env, **facts, "dtype": dtype_name,
           "tf32": bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32),
           "timings": timings, "median_ms": {k: round(v * 1e3, 3) for k, v in med.items()},
           "ratios": ratios, "peak_gpu_mib": peaks, "target": target, "accuracy": acc, **extra,
           "reps": args.reps, "warmup": args.warmup, "note": args.note}
    common.append(args.out, rec)
    del fns
    return rec


def main(argv=None) -> list[dict]:
    p = common.parser(__doc__.splitlines()[0])
    p.set_defaults(reps=20, warmup=3, max_load=1e9)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (a trial; default: cuda)")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma list of fp32, bf16, fp16 (default: fp32,bf16)")
    p.add_argument("--compile", default="bf16", help="dtypes whose encode and e2e rows also run torch.compile'd "
                   "(comma list; '' none; default: bf16)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    p.add_argument("--compile-only", action="store_true", help="only the compile pass (of the --compile dtypes)")
    p.add_argument("--batch", type=int, default=8, help="the larger e2e batch (default: 8)")
    p.add_argument("--deadline-s", type=float, default=None, help="start no row after this many seconds")
    args = p.parse_args(argv)
    common.setup(args)
    t_start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu: CUDA is not available here (use --device cpu --config tiny for a trial)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = [r for r in args.rows.split(",") if r]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        raise SystemExit(f"bench_gpu: unknown rows {bad}; choose from {', '.join(ROWS)}")
    dtypes = [d for d in args.dtypes.split(",") if d]
    compile_for = {d for d in args.compile.split(",") if d}
    facts = device_facts(device)
    env = common.environment()
    fp32_outputs: dict = {}
    records, skipped, keep = [], [], []

    def run(ctx, dname: str) -> None:
        for row in rows:
            for make in makers(args, row, ctx.compile):
                if args.deadline_s is not None and time.perf_counter() - t_start > args.deadline_s:
                    skipped.append(f"{dname}:{row}" + (":compile" if ctx.compile else ""))
                    continue
                t0 = time.perf_counter()
                rec = run_record(args, ctx, make, row, env, facts, dname)
                print(f"bench_gpu: {dname} {rec['bench']} ({time.perf_counter() - t0:.1f} s): "
                      + ", ".join(f"{k} {v:.2f} ms" for k, v in rec["median_ms"].items())
                      + (f"; ratios {', '.join(f'{k} {v:.2f}' for k, v in rec['ratios'].items())}" if rec["ratios"]
                         else ""), file=sys.stderr, flush=True)
                records.append(rec)

    if args.compile_only:
        dtypes = [d for d in dtypes if d in compile_for]
    for dname in dtypes:
        t0 = time.perf_counter()
        model, det, trk = build(args.config, args.seed, device, DTYPES[dname])
        print(f"bench_gpu: {dname} models built in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        ctx = Context(args, model, det, trk, fp32_outputs, False)
        if not args.compile_only:
            run(ctx, dname)
        if dname in compile_for:
            keep.append((dname, ctx))  # for the compile pass, after every plain row
        del model, det, trk, ctx
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for dname, ctx in keep:
        ctx.compile = True
        run(ctx, dname)
    summary = {"bench": "gpu_summary", "config": args.config, **env, **facts, "skipped": skipped,
               "wall_s": round(time.perf_counter() - t_start, 1), "rows": len(records),
               "targets": {f"{r['dtype']}:{r['bench']}": r["target"] for r in records if r["target"]},
               "note": args.note}
    common.append(args.out, summary)
    print_table(records)
    return records + [summary]


def print_table(records: list[dict]) -> None:
    print("\n dtype  row              " + "  ".join(f"{k:>24s}" for k in ("sam3kit ms", "transformers ms", "ratio")))
    for r in records:
        m = r["median_ms"]
        ours = m.get("sam3kit", m.get("sam3kit-predictor"))
        ref = m.get("transformers")
        ratio = r["ratios"].get("sam3kit")
        print(f" {r['dtype']:5s}  {r['bench']:15s}  {ours if ours is not None else '-':>24}  "
              f"{ref if ref is not None else '-':>24}  {f'{ratio:.2f}' if ratio else '-':>24}")
        for k in m:
            if k.endswith("compile") or k.startswith("sam3kit-predictor-"):
                print(f"        {k}: {m[k]:.2f} ms")


if __name__ == "__main__":
    main()
