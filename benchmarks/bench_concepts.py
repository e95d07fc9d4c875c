"""(g) Video concepts: time per frame of text detect-and-track with 1, 4 and 16 objects and the memory a session
holds after 20 and 60 frames, sam3kit ``VideoSession.add_concept`` + ``propagate`` against transformers
``Sam3VideoModel`` + ``Sam3VideoProcessor.postprocess_outputs`` in the same run.

Models. The released-size SAM 3 (detector and tracker) with random weights, shared tensor for tensor (transformers'
``Sam3VideoModel`` takes our state dict under the Hugging Face names, ``weights.writer.hf_state_dict``, with
``assign=True``); ours with the CPU kernels ``sam3kit.load`` applies. The object-score head's last bias is raised by
``OBJ_SCORE_BIAS`` on both (random weights give object scores near 0, i.e. empty or flickering tracks).

Frames. The ViT (~45 s a frame here) is bypassed: every frame's ViT output is a random tensor of the released
shape (1, 1024, 72, 72), the same on both sides; each side runs its own two necks on it (timed). sam3kit: the
session's ``ImageEncoder`` is a stand-in returning ``ImageState(model, trunk)`` of the frame (frames are tiny arrays
carrying their index; ``FRAME`` x ``FRAME`` sets the size of the stored results); transformers: the session's
``processed_frames`` are placeholders carrying the index and ``detector_model.get_vision_features`` returns the
frame's trunk through transformers' own detector neck (its tracker neck runs in ``get_vision_features_for_tracker``).
The text is encoded once by ours and given to both (transformers' tokenizer is not used; not timed).

Making both sides track the same objects (the trick). Random weights detect nothing and track noise, so:
- the detector's outputs get fixed offsets, on both sides alike (a wrapper of ``Sam3Model.detect`` / of transformers'
  detector ``forward``): queries 0..N-1 score 0.9 on frame 0 and 0.6 afterwards (above the 0.5 threshold, below the
  0.7 of a new object: later frames bring no new objects), every other query ~0, presence +20; their masks are
  ``0.1 * raw + 3 * (2 * disc - 1)`` with N disjoint discs on a 4 x 4 grid of the 4g x 4g mask (so NMS keeps them);
  the N objects are born on frame 0 on both sides;
- the tracks are the random tracker's own masks (object-score bias +10), which match no detection: to keep them
  alive the hot start's thresholds are set to its window, ``hotstart_unmatch_thresh = hotstart_dup_thresh =
  hotstart_delay = 15`` (a track born on frame 0 is within its window on frames 0-14, where it can be unmatched or a
  duplicate on at most 14 frames), on both sides; everything else keeps the released values (ours: NMS 0.1, hole
  filling 16 px on the CPU, re-conditioning every 16th frame; transformers skips NMS and hole filling without its
  CUDA kernels, as here, so ours does that work and it does not).
The record checks the outcome: ``tracked_objects`` (both sides, at every memory mark and the end) and ``same_ids``.

Timing, lock-step. Both implementations hold frames back for the hot start (15 frames) and report through a
generator; the sides alternate one ``next()`` at a time (sam3kit with memory selection off as transformers, then
optionally sam3kit with the released memory selection, then transformers), so that machine load hits all alike. The
first ``next()`` computes frames 0-14 (ours: plus the ``add_concept`` call on frame 0, added to it); each later one
computes one frame and reports one (transformers: ``propagate_in_video_iterator`` + ``postprocess_outputs`` of the
reported frame; sam3kit: ``propagate`` yields the ``FrameResult`` with its masks at frame size); once the last frame
is computed the rest is flushed (not timed as frames). ``per_frame`` is the median over the one-frame steps from
frame ``STEADY_FROM`` on (the memory bank and the pointer list are full), ``ratio_paired`` the median of the per-step
ratios.

Memory after frames 20 and 60 (computed): transformers, the tensors reachable from its inference session (every
distinct storage once; placeholders and model parameters left out); sam3kit, ``VideoSession.memory_bytes`` (which
counts the detector and tracker features of the frames it still holds). ``memory_flat``: sam3kit's figure at 60
within 5 % of that at 20.

Accuracy (informational: the implementations differ by the divergences named in
``tests/pipelines/video/test_transformers_concepts.py``): the ids tracked, and the IoU of the reported masks of each
object at frame 0 and at the last reported frame. By default ours runs the released NMS and hole filling, which
transformers skips here, so the random tracks' reported masks differ (hole filling removes their specks);
``--like-transformers`` turns both off in ours (not the released behaviour) to make the masks comparable.

``--device cuda`` / ``--dtype bf16`` run both sides there (``benchmarks/gpu/run.sh``; each timed step ends with a
device synchronisation; ours then runs without the CPU kernels, as ``sam3kit.load`` gives it there).

    python benchmarks/bench_concepts.py [--config tiny] [--frames 60] [--objects 1,4,16] [--selection-objects 1]
                                        [--like-transformers]
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402
from bench_video import FRAME, frames, tensor_bytes  # noqa: E402
from sam3kit.io.video import open_video  # noqa: E402
from sam3kit.pipelines.coords import ImageTransform  # noqa: E402
from sam3kit.pipelines.encoding import ImageState  # noqa: E402
from sam3kit.pipelines.text import TextFeatureCache  # noqa: E402
from sam3kit.pipelines.video import ConceptTrackOptions, VideoOptions  # noqa: E402
from sam3kit.pipelines.video.session import VideoSession  # noqa: E402

TARGET = 1.0
OBJ_SCORE_BIAS = 10.0
TEXT = "an object"
MEMORY_MARKS = (20, 60)
STEADY_FROM = 16  # one-frame steps computing frame >= this make the per-frame figure
BIRTH_SCORE, LATER_SCORE = 0.9, 0.6
HOTSTART = 15
HEURISTICS = dict(hotstart_delay=HOTSTART, hotstart_unmatch_thresh=HOTSTART, hotstart_dup_thresh=HOTSTART)
"""The settings both sides get (the rest at the released values): see the module docstring."""
MAX_OBJECTS = 16


# ---------------------------------------------------------------------- models and frames
def build(cfg_name: str, seed: int, device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32):
    """Our model (CPU kernels applied on the CPU) and transformers' ``Sam3VideoModel`` on the same tensors."""
    import transformers

    from sam3kit.config import Sam3Config
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.speed import SpeedOptions, apply_speed
    from sam3kit.weights.writer import hf_state_dict

    # tiny: d = 128 so that pointers are split into memory tokens as at release (transformers fails when d equals
    # memory_dim, a case the released model never meets)
    if cfg_name == "released":
        cfg = Sam3Config.released()
    else:  # 20 queries so that 16 objects fit (tiny has 10)
        cfg = Sam3Config.tiny(d=128)
        cfg = cfg.replace(detector=dataclasses.replace(
            cfg.detector, decoder=dataclasses.replace(cfg.detector.decoder, num_queries=2 * MAX_OBJECTS)))
    model = common.randomize(Sam3Model(cfg), seed).eval().requires_grad_(False)
    with torch.no_grad():
        trk = model.tracker_model
        trk.shared_image_embedding.positional_embedding.copy_(trk.prompt_encoder.shared_embedding.positional_embedding)
        trk.mask_decoder.pred_obj_score_head.proj_out.bias.add_(OBJ_SCORE_BIAS)
    model = model.to(device=device, dtype=dtype)
    d = cfg.to_hf_dict()
    hf_cfg = transformers.Sam3VideoConfig(**{k: v for k, v in d.items() if k not in ("model_type", "architectures")},
                                          **HEURISTICS)
    with torch.device(device):
        hf = transformers.Sam3VideoModel(hf_cfg).eval().requires_grad_(False)
    hf.load_state_dict(hf_state_dict(dict(model.state_dict()), cfg), strict=True, assign=True)  # the same tensors
    hf = hf.to(device=device, dtype=dtype)
    model = apply_speed(model, SpeedOptions())  # what sam3kit.load applies (the CPU set on the CPU only)
    return model, hf


def make_trunks(model, n: int, seed: int) -> list[torch.Tensor]:
    """Random ViT outputs of the model's shape (1, C, g, g) for frames 0..n-1 (computed once, untimed)."""
    vit = model.config.detector.vit
    out = []
    for t in range(n):
        gen = torch.Generator().manual_seed(1_000_000 * (seed + 1) + t)
        x = torch.randn(1, vit.hidden_size, vit.grid_size, vit.grid_size, generator=gen)
        x = x.to(device=model.device, dtype=model.dtype)
        out.append(x.contiguous(memory_format=torch.channels_last))
    return out


class _Encoder:
    """Stand-in for ``ImageEncoder``: the frame's index is in its first pixels; returns its random trunk (the
    necks then run on first use, as for a real encoding). ``last`` is the last frame encoded."""

    def __init__(self, model, trunks: list[torch.Tensor]) -> None:
        self.model, self.trunks, self.last = model, trunks, -1

    def encode_arrays(self, arrays):
        a = arrays[0]
        t = int(a[0, 0, 0]) + 256 * int(a[0, 0, 1])
        self.last = max(self.last, t)
        return ImageState(self.model, self.trunks[t], [ImageTransform(FRAME, FRAME, self.model.config.image_size)])


# ---------------------------------------------------------------------- the detector's offsets (module docstring)
def discs(n: int, size: int) -> torch.Tensor:
    """(n, size, size) float: n disjoint discs on a 4 x 4 grid."""
    step = size / 4
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = torch.zeros(n, size, size)
    for k in range(n):
        cy, cx = step * (k // 4 + 0.5), step * (k % 4 + 0.5)
        out[k] = (((yy - cy) ** 2 + (xx - cx) ** 2) <= (0.35 * step) ** 2).float()
    return out


def offsets(n: int, mask_size: int):
    """A function (frame, class logits (..., Q), presence logit, mask logits (..., Q, h, w)) -> the same with the
    scenario's scores and discs."""
    blobs = discs(n, mask_size)

    def apply(frame: int, logits: torch.Tensor, presence: torch.Tensor, masks: torch.Tensor):
        q = logits.shape[-1]
        p = BIRTH_SCORE if frame == 0 else LATER_SCORE
        fixed = torch.full((q,), -12.0)
        fixed[:n] = float(np.log(p / (1 - p)))
        big = torch.zeros(q, mask_size, mask_size)
        big[:n] = blobs
        return (logits * 0 + fixed.to(logits), presence * 0 + 20.0,
                0.1 * masks + (3 * (2 * big - 1)).to(masks))

    return apply


# ---------------------------------------------------------------------- one object count
def _ours(model, trunks, vids, texts, selection: bool, current: dict, like_transformers: bool):
    """Our session with the concept added on frame 0 (timed), and its encoder."""
    enc = _Encoder(model, trunks)
    extra = dict(det_nms_thresh=0.0, fill_hole_area=0) if like_transformers else {}
    opts = VideoOptions(memory_selection=selection, concepts=ConceptTrackOptions(**HEURISTICS, **extra))
    s = VideoSession(model, open_video(vids), enc, opts, texts=texts)
    current["encoder"] = enc
    t0 = time.perf_counter()
    first = s.add_concept(0, text=TEXT)
    return s, enc, first, time.perf_counter() - t0


def _reference(hf, trunks, text, n: int, apply):
    """transformers' session with the prompt, its per-frame generator (model + postprocess) and a frame counter."""
    import transformers.models.sam3_video.modeling_sam3_video as hf_video
    import transformers.models.sam3_video.processing_sam3_video as hf_proc

    det = hf.detector_model
    placeholders = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 1, 1).contiguous()
    dev = next(hf.parameters()).device
    sess = hf_video.Sam3VideoInferenceSession(video=placeholders, video_height=FRAME, video_width=FRAME,
                                              inference_device=dev, inference_state_device=dev,
                                              video_storage_device=dev, dtype=next(hf.parameters()).dtype)
    pid = sess.add_prompt(TEXT)
    sess.prompt_embeddings[pid] = SimpleNamespace(pooler_output=text.features)
    sess.prompt_attention_masks[pid] = (~text.padding_mask).long()
    state = {"last": -1}
    shipped = det.forward

    def get_vision_features(pixel_values, **kwargs):
        t = int(pixel_values.reshape(-1)[0])
        state["last"] = max(state["last"], t)
        trunk = trunks[t]
        fpn, pos = det.vision_encoder.neck(trunk)
        return SimpleNamespace(last_hidden_state=trunk.flatten(2).transpose(1, 2), fpn_hidden_states=fpn,
                               fpn_position_encoding=pos, hidden_states=None, attentions=None)

    def forward(vision_embeds=None, text_embeds=None, attention_mask=None, **kwargs):
        o = shipped(vision_embeds=vision_embeds, text_embeds=text_embeds, attention_mask=attention_mask)
        o.pred_logits, o.presence_logits, o.pred_masks = apply(state["last"], o.pred_logits, o.presence_logits,
                                                               o.pred_masks)
        return o

    det.get_vision_features = get_vision_features
    det.forward = forward
    proc = object.__new__(hf_proc.Sam3VideoProcessor)  # postprocess_outputs only (no tokenizer / processors)
    if not hasattr(hf_proc, "masks_to_boxes"):  # torchvision absent: the same definition
        hf_proc.masks_to_boxes = _masks_to_boxes

    def generate():
        for out in hf.propagate_in_video_iterator(sess, start_frame_idx=0):
            yield out.frame_idx, proc.postprocess_outputs(sess, out)

    return sess, generate(), state


def _masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, 4) xyxy of the first / last set column and row (torchvision's ``masks_to_boxes``)."""
    out = torch.zeros(masks.shape[0], 4)
    for i, m in enumerate(masks):
        if m.any():
            ys, xs = torch.nonzero(m, as_tuple=True)
            out[i] = torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float()
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def _mask_ious(ours: tuple, ref: dict) -> dict[int, float]:
    """Object id -> IoU of the two sides' reported masks (ours id = transformers id + 1; ids on one side only: 0)."""
    ids, masks = ours
    rid = (ref["object_ids"] + 1).tolist()
    rm = ref["masks"].numpy()
    out = {}
    for oid in sorted(set(ids) | set(rid)):
        if oid in ids and oid in rid:
            out[oid] = round(_iou(masks[ids.index(oid)], rm[rid.index(oid)]), 4)
        else:
            out[oid] = 0.0
    return out


def run_objects(args, model, hf, trunks, texts, n_obj: int) -> dict:
    n = args.frames + 1
    apply = offsets(n_obj, model.config.detector.vit.grid_size * 4)
    vids = frames(n)
    plain_detect = model.detect
    current = {}  # the encoder of the session running now (its last frame is the frame being detected)

    def detect(image, text_features, boxes=None, box_labels=None, box_padding=None, *, masks=True, semantic=True):
        out = plain_detect(image, text_features, boxes, box_labels, box_padding, masks=masks, semantic=semantic)
        out.logits, out.presence_logit, out.mask_logits = apply(current["encoder"].last, out.logits,
                                                                out.presence_logit, out.mask_logits)
        return out

    model.detect = detect  # the scenario's offsets (module docstring)
    ours, encoders, add_s = {}, {}, {}
    sides = [("sam3kit", False)] + ([("sam3kit-selection", True)] if n_obj in args.selection_objects else [])
    try:
        with torch.inference_mode():
            for name, sel in sides:
                s, enc, _, dt = _ours(model, trunks, vids, texts, sel, current, args.like_transformers)
                ours[name], encoders[name], add_s[name] = s, enc, dt
            sess, ref_it, ref_state = _reference(hf, trunks, texts.get(TEXT), n, apply)
            its = {k: s.propagate(direction="forward") for k, s in ours.items()}
            its["transformers"] = ref_it
            steps = {k: [] for k in its}  # (last computed frame after the step, seconds)
            memory = {k: {} for k in [*ours, "transformers"]}
            tracked = {}
            reported: dict[str, dict[int, tuple]] = {k: {} for k in its}
            done = False
            while not done:
                for k, it in its.items():
                    current["encoder"] = encoders.get(k)
                    common.sync(model.device)
                    t0 = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        done = True
                        break
                    common.sync(model.device)
                    dt = time.perf_counter() - t0
                    last = ref_state["last"] if k == "transformers" else encoders[k].last
                    if k == "transformers":
                        reported[k][item[0]] = item[1]
                    else:
                        reported[k][item.frame_index] = (item.object_ids.tolist(), item.masks)
                    if not steps[k] or last > steps[k][-1][0]:
                        steps[k].append((last, dt + (add_s.get(k, 0.0) if not steps[k] else 0.0)))
                if done:
                    break
                last = steps["sam3kit"][-1][0]
                for mark in MEMORY_MARKS:
                    if last == mark and mark not in memory["transformers"]:
                        gc.collect()
                        for k, s in ours.items():
                            memory[k][mark] = round(s.memory_bytes / 2 ** 20, 2)
                        memory["transformers"][mark] = round(tensor_bytes(sess) / 2 ** 20, 2)
                        tracked[mark] = {"sam3kit": ours["sam3kit"].object_ids,
                                         "transformers": [i + 1 for i in sess.obj_ids]}
                if steps["sam3kit"] and len(steps["sam3kit"]) % 10 == 0:
                    print(f"  {n_obj} obj, frame {last}: " + ", ".join(f"{k} {v[-1][1]:.3f} s"
                                                                        for k, v in steps.items() if v),
                          file=sys.stderr, flush=True)
            for it in its.values():
                it.close()
            tracked["end"] = {"sam3kit": ours["sam3kit"].object_ids, "transformers": [i + 1 for i in sess.obj_ids]}
    finally:
        model.detect = plain_detect
        for name in ("get_vision_features", "forward"):
            hf.detector_model.__dict__.pop(name, None)
        for s in ours.values():
            s.close()
    one = {k: [(f, t) for f, t in v[1:] if f >= STEADY_FROM] for k, v in steps.items()}
    per_frame = {k: common.stats([t for _, t in v]) for k, v in one.items() if v}
    ref_by_frame = dict(one["transformers"])
    paired = {k: statistics.median(t / ref_by_frame[f] for f, t in v if f in ref_by_frame)
              for k, v in one.items() if k != "transformers" and v}
    last_reported = max(reported["sam3kit"])
    acc = {"tracked_objects": {m: {k: len(v) for k, v in d.items()} for m, d in tracked.items()},
           "same_ids": all(d["sam3kit"] == d["transformers"] for d in tracked.values()),
           "frame0_mask_iou": _mask_ious(reported["sam3kit"][0], reported["transformers"][0]),
           "last_frame": last_reported,
           "last_frame_mask_iou": _mask_ious(reported["sam3kit"][last_reported],
                                             reported["transformers"][last_reported])}
    return {"objects": n_obj, "per_frame": per_frame,
            "ratio_median": {k: per_frame[k]["median_s"] / per_frame["transformers"]["median_s"]
                             for k in ours if k in per_frame and "transformers" in per_frame},
            "ratio_paired": paired,
            "first_step_s": {k: round(v[0][1], 4) for k, v in steps.items()},
            "steady_frames": [one["sam3kit"][0][0], one["sam3kit"][-1][0]] if one["sam3kit"] else [],
            "memory_mb": memory, "accuracy": acc,
            "all_steps": {k: [[f, round(t, 4)] for f, t in v] for k, v in steps.items()}}


def main(argv=None) -> dict:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60, help="frames after frame 0 (default: 60, frames 0..60)")
    p.add_argument("--objects", default="1,4,16", help=f"object counts, comma-separated, at most {MAX_OBJECTS} "
                                                        "(default: 1,4,16)")
    p.add_argument("--selection-objects", default="1",
                   help="object counts for which sam3kit also runs with the released memory selection (default: 1)")
    p.add_argument("--like-transformers", action="store_true",
                   help="run ours without NMS and hole filling, as transformers runs without its CUDA kernels "
                        "(the reported masks are then comparable; default: the released values)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="both sides' dtype")
    args = p.parse_args(argv)
    counts = [int(k) for k in args.objects.split(",") if k]
    if not counts or not all(1 <= k <= MAX_OBJECTS for k in counts):
        p.error(f"--objects takes counts between 1 and {MAX_OBJECTS}, got {args.objects!r}")
    if args.frames < HOTSTART:
        p.error(f"--frames must be at least the hot-start delay ({HOTSTART}), got {args.frames}")
    args.selection_objects = {int(k) for k in args.selection_objects.split(",") if k}
    common.setup(args)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 is fp32 on CUDA too
    model, hf = build(args.config, args.seed, device, dtype)
    trunks = make_trunks(model, args.frames + 1, args.seed)
    text = TextFeatureCache(model)
    text.get(TEXT)  # encoded once, before timing
    env = common.environment()
    env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
    runs = [run_objects(args, model, hf, trunks, text, k) for k in counts]
    timings = {f"{k}_{r['objects']}obj": v for r in runs for k, v in r["per_frame"].items()}
    flat = {}
    for r in runs:
        m = r["memory_mb"]["sam3kit"]
        if 20 in m and 60 in m:
            flat[f"{r['objects']}obj"] = m[60] <= 1.05 * m[20]
    record = {
        "bench": "g_video_concepts", "config": args.config, **env, "load_avg_1m_end": common.load_average(),
        "dtype": str(dtype).replace("torch.", ""), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else env["cpu"],
        "torch_cuda": torch.version.cuda,
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1) if device.type == "cuda" else None,
        "timings": timings,
        "ratio_median": {f"{r['objects']}obj": r["ratio_median"].get("sam3kit") for r in runs},
        "ratio_paired": {f"{k}_{r['objects']}obj": v for r in runs for k, v in r["ratio_paired"].items()},
        "target_ratio": TARGET,
        "target_met": all((r["ratio_median"].get("sam3kit") or float("inf")) <= TARGET for r in runs),
        "memory_flat": flat or None,
        "accuracy": {f"{r['objects']}obj": r["accuracy"] for r in runs}, "peak_rss_mb_process": common.peak_rss_mb(),
        "frames": args.frames, "frame_size": FRAME, "obj_score_bias": OBJ_SCORE_BIAS, "heuristics": HEURISTICS,
        "like_transformers": args.like_transformers,
        "runs": runs, "note": args.note,
    }
    common.append(args.out, record)
    return record


if __name__ == "__main__":
    main()
