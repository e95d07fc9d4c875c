"""(b) A text prompt on a cached encoding and (c) one click on a cached encoding.

(b) sam3kit: ``encode_text`` (of the token columns up to the last valid one, as ``ImagePredictor`` cuts them) +
    ``Detector.forward_prompts(masks=True, semantic=False)`` (the semantic map is not asked for, so it is not
    computed) on features prepared as ``ImagePredictor`` keeps them: the image part of the pixel decoder and the
    first DETR-encoder self-attention (``Detector.with_image_terms``) are computed once per image, at the first
    prompt, and their one-time cost is recorded as ``image_terms_once_s``; transformers:
    ``Sam3Model(vision_embeds=..., input_ids=...)``, which recomputes everything for every prompt. The prompt is a
    text plus one exemplar box, the case where the official model and transformers agree (a text-only prompt
    differs by design: the official model always appends the geometry CLS token, transformers does not).
    Accuracy: max abs diff of class logits, presence, boxes and mask logits.
(c) sam3kit: ``Tracker.predict`` (one foreground click, 3 masks); transformers: ``Sam3TrackerModel`` with
    ``image_embeddings`` (the no-memory embedding added to the g x g level as the official model does;
    transformers adds it to another level). Accuracy: max abs diff of mask logits and IoU scores.

sam3kit runs with the CPU speed set on the CPU, as ``sam3kit.load`` applies it.
The encodings are computed once (untimed). ``--which b|c|both``.

    python benchmarks/bench_prompt.py [--config tiny] [--which both]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import common  # noqa: E402
from sam3kit.pipelines.text import trim_padding  # noqa: E402

TARGETS = {"b": 0.7, "c": 0.7}


def text_inputs(cfg, seed: int):
    g = torch.Generator().manual_seed(20_000 + seed)
    L = cfg.detector.text.context_length
    ids = torch.randint(1, cfg.detector.text.vocab_size - 2, (1, L), generator=g)
    valid = torch.arange(L)[None] < 6
    box = torch.tensor([[[0.45, 0.55, 0.3, 0.25]]])
    return ids, valid, box


def run_b(args, model, pixels) -> dict:
    hf = common.hf_detector(model)
    det = model.detector_model
    ids, valid, box = text_inputs(model.config, args.seed)
    with torch.inference_mode():
        feats = model.encode_image(pixels, detector=True).detector
        t0 = time.perf_counter()
        feats = det.with_image_terms(feats)
        image_terms_s = time.perf_counter() - t0
        vo = hf.get_vision_features(pixel_values=pixels)

        def ours():
            text = det.encode_text(*trim_padding(ids, ~valid))  # the cut the pipelines make
            return det.forward_prompts(feats, text, box, masks=True, semantic=False)

        def ref():
            return hf(vision_embeds=vo, input_ids=ids, attention_mask=valid.long(), input_boxes=box)

        a, b = ours(), ref()
        acc = {"logits_max_abs_diff": common.max_abs_diff(a.logits, b.pred_logits),
               "presence_max_abs_diff": common.max_abs_diff(a.presence_logit, b.presence_logits.reshape(-1)),
               "boxes_max_abs_diff": common.max_abs_diff(a.boxes, b.pred_boxes),
               "masks_max_abs_diff": common.max_abs_diff(a.mask_logits, b.pred_masks),
               "masks_abs_max": b.pred_masks.abs().max().item()}
        env = common.environment()
        env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
        timings = common.timed_interleaved({"sam3kit": ours, "transformers": ref}, args.warmup, args.reps)
    return common.finish(args, "b_text_prompt_cached", timings, env, target=TARGETS["b"],
                         extra={"prompt": "text (6 tokens) + 1 box", "image_terms_once_s": round(image_terms_s, 3)},
                         accuracy=acc)


def run_c(args, model, pixels) -> dict:
    hf = common.hf_tracker(model)
    S = model.config.image_size
    pts = torch.tensor([[[0.37 * S, 0.61 * S]]])
    lab = torch.ones(1, 1, dtype=torch.long)
    with torch.inference_mode():
        trunk = model.detector_model.vision_encoder.backbone(pixels)
        feats = model.tracker_features(trunk)
        emb = [feats.high_res[0], feats.high_res[1], feats.embed + hf.no_memory_embedding.view(1, -1, 1, 1)]

        def ours():
            return model.tracker_model.predict(feats, pts, lab, multimask=True)

        def ref():
            return hf(image_embeddings=emb, input_points=pts[:, None], input_labels=lab[:, None],
                      multimask_output=True)

        a, b = ours(), ref()
        acc = {"mask_logits_max_abs_diff": common.max_abs_diff(a.mask_logits, b.pred_masks.flatten(0, 1).clamp(-32, 32)),
               "iou_max_abs_diff": common.max_abs_diff(a.iou_scores, b.iou_scores.flatten(0, 1)),
               "object_score_max_abs_diff": common.max_abs_diff(a.object_score_logit, b.object_score_logits.flatten(0, 1))}
        env = common.environment()
        env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
        timings = common.timed_interleaved({"sam3kit": ours, "transformers": ref}, args.warmup, args.reps)
    return common.finish(args, "c_click_cached", timings, env, target=TARGETS["c"],
                         extra={"prompt": "1 foreground click, multimask"}, accuracy=acc)


def main(argv=None) -> list[dict]:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--which", choices=("b", "c", "both"), default="both")
    args = p.parse_args(argv)
    common.setup(args)
    model = common.random_model(common.config(args.config), args.seed)
    pixels = common.random_pixels(model.config.image_size, args.seed)
    out = []
    if args.which in ("b", "both"):
        out.append(run_b(args, model, pixels))
    if args.which in ("c", "both"):
        out.append(run_c(args, model, pixels))
    return out


if __name__ == "__main__":
    main()
