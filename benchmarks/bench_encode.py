"""(a) Vision encode: pixels (1, 3, S, S) -> the detector's image features, ready for a text prompt.

sam3kit: ``Sam3Model.encode_image(pixels)`` = ViT + detector neck levels 4g, 2g, g (the g/2 level is never used).
transformers: ``Sam3Model.get_vision_features(pixels)`` = ViT + all four neck levels + their position maps.
Both in one process, interleaved, same random weights. Accuracy: max abs diff of the three neck levels.

``--fast int8`` also times sam3kit with int8 Linear layers in the ViT (``sam3kit.speed.quantize_int8``) and
measures its accuracy cost against sam3kit fp32 on the same weights: cosine similarity and max abs diff of the
ViT output and the neck levels, and downstream a text(+box) prompt (mask IoU, score and box differences) and a
click (mask IoU, IoU-score differences). ``--image-size`` runs sam3kit at another input resolution (accuracy
against 1008 is then the downstream agreement, not feature equality). ``--floor`` also times the kernel floor
(``floor.py``: the products, attention calls and convolutions of the encode alone, on preallocated inputs), the
least time an implementation on torch's kernels can take, as ``ratio_median_kernel-floor`` (with ``--fast int8``
also the int8 path's floor, ``ratio_median_kernel-floor-int8``).

    python benchmarks/bench_encode.py [--config tiny] [--fast int8] [--image-size 672] [--floor]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import common  # noqa: E402
from floor import kernel_floor  # noqa: E402

TARGETS = {"fp32": 0.85, "int8": 0.45}


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    inter = (a & b).sum().item()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else inter / union


def downstream(model, fast_model, feats, fast_feats, trunk, fast_trunk, seed: int) -> dict:
    """Agreement of a prompt answered on fp32 features vs on the fast path's features (same weights)."""
    det = model.detector_model
    g = torch.Generator().manual_seed(seed)
    L = model.config.detector.text.context_length
    ids = torch.randint(1, model.config.detector.text.vocab_size - 2, (1, L), generator=g)
    pad = torch.arange(L)[None] >= 5
    box = torch.tensor([[[0.5, 0.5, 0.3, 0.4]]])
    out = {}
    with torch.inference_mode():
        text = det.encode_text(ids, pad)
        fast_text = fast_model.detector_model.encode_text(ids, pad)
        a = det.forward_prompts(feats, text, box, masks=True, semantic=False)
        b = fast_model.detector_model.forward_prompts(fast_feats, fast_text, box, masks=True, semantic=False)
        sa = a.logits.sigmoid() * a.presence_logit.sigmoid()[:, None]
        sb = b.logits.sigmoid() * b.presence_logit.sigmoid()[:, None]
        top = sa[0].topk(min(10, sa.shape[1])).indices
        same_size = a.mask_logits.shape == b.mask_logits.shape
        out["text_score_max_abs_diff"] = common.max_abs_diff(sa, sb)
        out["text_box_max_abs_diff"] = common.max_abs_diff(a.boxes, b.boxes)
        if same_size:
            out["text_top10_mask_iou_mean"] = sum(
                _iou(a.mask_logits[0, q] > 0, b.mask_logits[0, q] > 0) for q in top.tolist()) / len(top)
        if model.has_tracker:
            ta = model.tracker_features(trunk)
            tb = fast_model.tracker_features(fast_trunk)
            s = model.config.image_size
            pts = torch.tensor([[[0.4 * s, 0.6 * s]]])
            lab = torch.ones(1, 1, dtype=torch.long)
            pa = model.tracker_model.predict(ta, pts, lab)
            sf = fast_model.config.image_size
            pb = fast_model.tracker_model.predict(tb, pts * sf / s, lab)
            out["click_iou_score_max_abs_diff"] = common.max_abs_diff(pa.iou_scores, pb.iou_scores)
            if pa.mask_logits.shape == pb.mask_logits.shape:
                out["click_mask_iou_min"] = min(_iou(pa.mask_logits[0, m] > 0, pb.mask_logits[0, m] > 0)
                                                for m in range(pa.mask_logits.shape[1]))
            else:  # another resolution: compare at the fp32 mask size
                up = torch.nn.functional.interpolate(pb.mask_logits, size=pa.mask_logits.shape[-2:], mode="bilinear",
                                                     align_corners=False)
                out["click_mask_iou_min"] = min(_iou(pa.mask_logits[0, m] > 0, up[0, m] > 0)
                                                for m in range(pa.mask_logits.shape[1]))
    return out


def main(argv=None) -> dict:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--fast", choices=("none", "int8"), default="none", help="also time a fast path (default: none)")
    p.add_argument("--image-size", type=int, default=None, help="also time sam3kit at this input size")
    p.add_argument("--no-reference", action="store_true", help="skip transformers (fast-path accuracy only)")
    p.add_argument("--floor", action="store_true", help="also time the kernel floor (floor.py)")
    args = p.parse_args(argv)
    common.setup(args)
    cfg = common.config(args.config)
    model = common.random_model(cfg, args.seed)
    S = cfg.image_size
    pixels = common.random_pixels(S, args.seed)
    fns = {"sam3kit": lambda: model.encode_image(pixels, detector=True)}
    extra, accuracy = {"image_size": S}, {}
    if not args.no_reference:
        hf = common.hf_detector(model)
        fns["transformers"] = lambda: hf.get_vision_features(pixel_values=pixels)

    fast_model = None
    if args.fast == "int8":
        from sam3kit.speed import Int8Options, quantize_int8

        t0 = time.perf_counter()
        fast_model = quantize_int8(shared_copy(model), Int8Options())
        extra["int8_build_s"] = round(time.perf_counter() - t0, 2)
        fns["sam3kit-int8"] = lambda: fast_model.encode_image(pixels, detector=True)
        if args.floor:
            fns["kernel-floor-int8"] = kernel_floor(fast_model, pixels)
    if args.floor:
        fns["kernel-floor"] = kernel_floor(model, pixels)
    size_model = None
    if args.image_size:
        size_model = shared_copy(model, args.image_size)
        small = torch.nn.functional.interpolate(pixels, size=(args.image_size,) * 2, mode="bilinear",
                                                align_corners=False, antialias=True)
        fns[f"sam3kit-{args.image_size}px"] = lambda: size_model.encode_image(small, detector=True)
        extra["small_image_size"] = args.image_size

    with torch.inference_mode():
        ours = model.encode_image(pixels, detector=True).detector
        if "transformers" in fns:
            ref = hf.get_vision_features(pixel_values=pixels)
            accuracy["fpn_max_abs_diff"] = max(common.max_abs_diff(a, b) for a, b in zip(ours.fpn, ref.fpn_hidden_states))
        trunk = model.detector_model.vision_encoder.backbone(pixels)
        if fast_model is not None:
            ftrunk = fast_model.detector_model.vision_encoder.backbone(pixels)
            ffeat = fast_model.detector_model.vision_encoder.features_from_trunk(ftrunk)
            accuracy["int8"] = {
                "trunk_cosine": _cos(trunk, ftrunk), "trunk_max_abs_diff": common.max_abs_diff(trunk, ftrunk),
                "trunk_abs_max": trunk.abs().max().item(),
                "fpn_cosine_min": min(_cos(a, b) for a, b in zip(ours.fpn, ffeat.fpn)),
                **downstream(model, fast_model, ours, ffeat, trunk, ftrunk, args.seed)}
        if size_model is not None:
            strunk = size_model.detector_model.vision_encoder.backbone(small)
            sfeat = size_model.detector_model.vision_encoder.features_from_trunk(strunk)
            accuracy[f"{args.image_size}px"] = downstream(model, size_model, ours, sfeat, trunk, strunk, args.seed)

    env = common.environment()
    env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
    with torch.inference_mode():
        timings = common.timed_interleaved(fns, args.warmup, args.reps)
    if "transformers" in timings:
        for name in fns:
            if name not in ("sam3kit", "transformers"):
                extra[f"ratio_median_{name}"] = common.ratio(timings[name], timings["transformers"])
        if "kernel-floor" in fns:
            extra["ratio_median_sam3kit_over_floor"] = common.ratio(timings["sam3kit"], timings["kernel-floor"])
        if "kernel-floor-int8" in fns:
            extra["ratio_median_sam3kit-int8_over_floor"] = common.ratio(timings["sam3kit-int8"],
                                                                          timings["kernel-floor-int8"])
        if "sam3kit-int8" in fns:
            r = extra["ratio_median_sam3kit-int8"]
            extra["int8_target_ratio"], extra["int8_target_met"] = TARGETS["int8"], r <= TARGETS["int8"]
    return common.finish(args, "a_vision_encode", timings, env, target=TARGETS["fp32"], extra=extra, accuracy=accuracy)


def shared_copy(model, size=None):
    """A second model object sharing ``model``'s weight tensors (no copy), optionally for another input size, with
    the default speed features of ``sam3kit.load`` (the CPU set on the CPU), as ``common.random_model``."""
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.speed import SpeedOptions, apply_speed

    cfg = model.config if size is None else model.config.with_image_size(size)
    with torch.device("meta"):
        m = Sam3Model(cfg)
    m.load_state_dict(model.state_dict(), strict=True, assign=True)
    return apply_speed(m.eval(), SpeedOptions())


if __name__ == "__main__":
    main()
