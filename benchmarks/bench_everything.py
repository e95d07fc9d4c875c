"""(j) Segment everything: what a grid of clicks costs on a cached encoding, against one click, and what scoring at
the decoder's resolution changes against SAM 1's scoring at the image size.

The tracker head only, as in ``bench_video.py``: random weights of the chosen size (the object-score bias is of no
use here: nothing reads it) and random tracker-neck features of its shapes, made once, untimed (the encoding is
cached in use: ``set_image`` runs before, whatever the prompts). Timed, interleaved:

- ``click``: one foreground click through the head (``Tracker.predict``, 3 masks), as row (c) times it;
- ``click_predict``: the same click as ``ImagePredictor.predict`` returns it: hole filling, the 3 masks upsampled
  to the image size and thresholded;
- ``decoder``: the grid's decoder calls alone (``points_per_batch`` clicks each): the floor of the grid;
- ``grid_<scenario>``: ``segment_everything`` on the grid (``pipelines/everything``), for each scenario:
  ``defaults`` (SAM 1's options; with random weights the predicted IoUs sit near 0.5, so almost nothing passes
  0.88: a lower bound of the work after the decoder), ``scored`` (every filter off: each candidate is hole-filled,
  scored and boxed at the image size and de-duplicated) and ``upsampled`` (NMS off too: every candidate is also
  upsampled, as SAM 1 upsamples every candidate; heavy at released size).

``--accuracy``: the same decoder outputs scored as SAM 1 does, on the logits of every candidate upsampled to the
image size (stability, boxes, NMS), against ``segment_everything`` (which counts at the image size without
upsampling and upsamples only the masks it keeps), with ``pred_iou_thresh`` 0 and the stability threshold at the
median score (so that many decisions are close): kept masks on each side and in common (same click and candidate),
the largest stability difference and the mask pixels that differ among the common ones.

``--shapes``: the released-size head built on the meta device, one batch of ``points_per_batch`` clicks through it
(shapes only, no arithmetic).

    python benchmarks/bench_everything.py [--config tiny|medium|released] [--points-per-side 32] [--image 1000x1500]
        [--scenarios defaults,scored] [--accuracy] [--shapes] [--out FILE]

Nothing is appended unless ``--out`` is given; the record is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402
from sam3kit.model.features import TrackerImageFeatures  # noqa: E402
from sam3kit.ops.components import fill_small_regions  # noqa: E402
from sam3kit.pipelines.coords import ImageTransform  # noqa: E402
from sam3kit.pipelines.encoding import ImageState  # noqa: E402
from sam3kit.pipelines.everything import EverythingOptions, segment_everything  # noqa: E402
from sam3kit.pipelines.everything.boxes import mask_boxes  # noqa: E402
from sam3kit.pipelines.everything.grid import crop_points  # noqa: E402
from sam3kit.pipelines.everything.nms import nms  # noqa: E402
from sam3kit.pipelines.everything.stability import stability_score  # noqa: E402
from sam3kit.pipelines.options import PredictOptions  # noqa: E402
from sam3kit.pipelines.postprocess import upsample_logits  # noqa: E402

SCENARIOS = {"defaults": {}, "scored": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
             "upsampled": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}}


def tracker_config(name: str):
    from sam3kit.config import Sam3Config, TrackerConfig

    if name == "released":
        return Sam3Config.released().tracker
    if name == "medium":  # the released widths on a 336 px input: a 24 x 24 grid, 96 x 96 masks (1/9 of the work)
        return TrackerConfig(image_size=336)
    return Sam3Config.tiny().tracker


def build(cfg_name: str, seed: int):
    from sam3kit.model.tracker.tracker import Tracker
    from sam3kit.speed.cpu import apply_cpu_kernels

    trk = common.randomize(Tracker(tracker_config(cfg_name)), seed).eval().requires_grad_(False)
    return apply_cpu_kernels(trk)


def features(trk, seed: int) -> TrackerImageFeatures:
    c = trk.config
    g, d = c.grid_size, c.hidden_size
    gen = torch.Generator().manual_seed(1_000 + seed)
    with torch.inference_mode():
        return trk.image_features([torch.randn(1, d, s, s, generator=gen) for s in (4 * g, 2 * g, g)])


class _Model:
    """What ``segment_everything`` reads of a ``Sam3Model``: the tracker head and its placement."""

    def __init__(self, trk) -> None:
        self.trk = trk
        self.has_tracker = True
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def predict_masks(self, feats, points, labels, boxes=None, mask_input=None, *, multimask=True):
        return self.trk.predict(feats, points, labels, boxes, mask_input, multimask=multimask)


def predictor_for(trk, feats: TrackerImageFeatures, height: int, width: int):
    """A stand-in ``ImagePredictor``: the cached state holds the random features (the ViT is bypassed)."""
    model = _Model(trk)
    state = ImageState(model, torch.zeros(1, 1, 1, 1), [ImageTransform(height, width, trk.config.image_size)])
    state._tracker = feats  # the tracker neck's output, as tracker_features() would keep it
    return SimpleNamespace(model=model, state=state, options=PredictOptions(), encoder=None)


def decoder_batches(trk, feats, points_model: torch.Tensor, batch: int):
    outs = []
    for s in range(0, len(points_model), batch):
        p = points_model[s:s + batch]
        k = len(p)
        f = TrackerImageFeatures(embed=feats.embed.expand(k, -1, -1, -1),
                                 high_res=[x.expand(k, -1, -1, -1) for x in feats.high_res], dense_pe=feats.dense_pe)
        outs.append(trk.predict(f, p[:, None], torch.ones(k, 1, dtype=torch.int64), multimask=True))
    return outs


# ---------------------------------------------------------------------- accuracy
def accuracy(trk, feats, pred, opts: EverythingOptions, H: int, W: int, threshold=None) -> dict:
    """SAM 1's scoring on the same decoder outputs upsampled to the image size (every candidate), against
    ``segment_everything`` (which upsamples only what it keeps), at the stability ``threshold`` (default: the
    reference's median score, so that many decisions are close)."""
    tr = pred.state.transforms[0]
    pts = crop_points(opts.points_per_side, W, H)
    pm = tr.points_to_model(pts.astype(np.float32))
    popts = pred.options
    stab, ious, boxes, keys, lows = [], [], [], [], []
    with torch.inference_mode():
        for b, out in enumerate(decoder_batches(trk, feats, pm, opts.points_per_batch)):
            k, m = out.mask_logits.shape[:2]
            lg = fill_small_regions(out.mask_logits.float().flatten(0, 1), max_hole_area=popts.max_hole_area,
                                    max_sprinkle_area=popts.max_sprinkle_area)
            lows.append(lg)
            for s in range(0, len(lg), 16):
                up = upsample_logits(lg[s:s + 16], H, W)
                stab.append(stability_score(up, 0.0, opts.stability_score_offset))
                boxes.append(mask_boxes(up > 0))
            ious.append(out.iou_scores.float().flatten())
            keys += [(b * opts.points_per_batch + i // m, float(out.iou_scores[i // m, i % m])) for i in range(k * m)]
    full, iou, box, lowres = torch.cat(stab), torch.cat(ious), torch.cat(boxes), torch.cat(lows)
    thr = float(full.nan_to_num(0).median()) if threshold is None else threshold
    idx = torch.nonzero(full >= thr).flatten()  # SAM 1: stability >= thr, then NMS by predicted IoU
    kept = idx[nms(box[idx], iou[idx], opts.box_nms_thresh)]
    ref = {keys[int(i)]: int(i) for i in kept}
    ours = segment_everything(pred, EverythingOptions(**{**_fields(opts), "pred_iou_thresh": 0.0,
                                                         "stability_score_thresh": thr}))
    click = {tuple(np.round(p, 6)): i for i, p in enumerate(pts)}
    got = {(click[tuple(np.round(r["point_coords"][0], 6))], r["predicted_iou"]): r for r in ours}
    same = set(ref) & set(got)
    stab_diff, px_diff = 0.0, 0
    for key in same:
        i, r = ref[key], got[key]
        stab_diff = max(stab_diff, abs(float(full[i]) - r["stability_score"]))
        mask = (upsample_logits(lowres[i:i + 1], H, W)[0] > 0).numpy()
        px_diff += int((mask != r["segmentation"]).sum())
    return {"stability_threshold": thr, "candidates": int(len(full)), "kept_reference": len(ref),
            "kept_ours": len(got), "kept_same": len(same), "stability_max_abs_diff": stab_diff,
            "mask_pixels_differing": px_diff}


def _fields(o) -> dict:
    from dataclasses import asdict

    return asdict(o)


# ---------------------------------------------------------------------- shapes at released size
def released_shapes(points_per_batch: int) -> dict:
    from sam3kit.config import Sam3Config
    from sam3kit.model.tracker.tracker import Tracker

    with torch.device("meta"):
        trk = Tracker(Sam3Config.released().tracker).eval()
        c = trk.config
        g, d = c.grid_size, c.hidden_size
        f = trk.image_features([torch.empty(1, d, s, s) for s in (4 * g, 2 * g, g)])
        k = points_per_batch
        feat = TrackerImageFeatures(embed=f.embed.expand(k, -1, -1, -1),
                                    high_res=[x.expand(k, -1, -1, -1) for x in f.high_res], dense_pe=f.dense_pe)
        out = trk.predict(feat, torch.empty(k, 1, 2), torch.ones(k, 1, dtype=torch.int64), multimask=True)
    return {"mask_logits": list(out.mask_logits.shape), "iou_scores": list(out.iou_scores.shape),
            "lowres_bytes_per_candidate": int(4 * out.mask_logits.shape[-1] * out.mask_logits.shape[-2])}


# ---------------------------------------------------------------------- main
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=("tiny", "medium", "released"), default="medium",
                   help="head size (default: medium = released widths on a 336 px input)")
    p.add_argument("--points-per-side", type=int, default=32, help="grid side (default: 32)")
    p.add_argument("--points-per-batch", type=int, default=64, help="clicks per decoder call (default: 64)")
    p.add_argument("--image", default="1000x1500", help="image size HxW the masks are upsampled to")
    p.add_argument("--scenarios", default="defaults,scored", help=f"comma list of {', '.join(SCENARIOS)}")
    p.add_argument("--accuracy", action="store_true", help="compare with SAM 1's scoring at the image size")
    p.add_argument("--shapes", action="store_true", help="also check the released shapes on the meta device")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-load", type=float, default=0.5)
    p.add_argument("--wait-timeout", type=float, default=1800.0)
    p.add_argument("--out", type=Path, default=None, help="JSON-lines file to append the record to (default: none)")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    common.setup(args)
    H, W = (int(v) for v in args.image.lower().split("x"))
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario {unknown[0]!r}")

    trk = build(args.config, args.seed)
    feats = features(trk, args.seed)
    pred = predictor_for(trk, feats, H, W)
    S = trk.config.image_size
    tr = pred.state.transforms[0]
    grid = tr.points_to_model(crop_points(args.points_per_side, W, H).astype(np.float32))
    one = torch.tensor([[[0.37 * S, 0.61 * S]]])
    lab = torch.ones(1, 1, dtype=torch.int64)
    base = EverythingOptions(points_per_side=args.points_per_side, points_per_batch=args.points_per_batch)
    counts: dict[str, int] = {}

    def click():
        return trk.predict(feats, one, lab, multimask=True)

    def click_predict():
        out = trk.predict(feats, one, lab, multimask=True)
        lg = fill_small_regions(out.mask_logits.float()[0], max_hole_area=256.0)
        return (upsample_logits(lg, H, W) > 0).numpy()

    def decoder():
        return decoder_batches(trk, feats, grid, args.points_per_batch)

    fns = {"click": click, "click_predict": click_predict, "decoder": decoder}
    for name in scenarios:
        opts = EverythingOptions(**{**_fields(base), **SCENARIOS[name]})

        def run(opts=opts, name=name):
            counts[name] = len(segment_everything(pred, opts))
        fns[f"grid_{name}"] = run

    env = common.environment()
    env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
    with torch.inference_mode():
        timings = common.timed_interleaved(fns, args.warmup, args.reps)
    ratios = {k: timings[k]["median_s"] / timings["click"]["median_s"] for k in timings if k != "click"}
    acc = {}
    if args.accuracy:
        t0 = time.perf_counter()
        acc = accuracy(trk, feats, pred, base, H, W)
        acc["seconds"] = round(time.perf_counter() - t0, 1)
    record = {
        "bench": "j_everything_cached", "config": args.config, **env, "load_avg_1m_end": common.load_average(),
        "dtype": "float32", "grid": f"{args.points_per_side}x{args.points_per_side}",
        "points_per_batch": args.points_per_batch, "image": [H, W], "lowres": int(4 * trk.config.grid_size),
        "timings": timings, "ratio_to_click": ratios, "records": counts, "accuracy": acc,
        "per_click_in_grid_ms": 1000 * statistics.median(timings["decoder"]["all_s"]) / args.points_per_side ** 2,
        "peak_rss_mb_process": common.peak_rss_mb(), "note": args.note,
    }
    if args.shapes:
        record["released_shapes"] = released_shapes(args.points_per_batch)
    if args.out is not None:
        common.append(args.out, record)
    else:
        import json

        print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
