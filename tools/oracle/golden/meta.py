"""``meta.json``: versions, seeds, the tiny configuration, a description and shape of every field, the numerical
margins of every threshold decision, suggested tolerances and notes."""
from __future__ import annotations

import datetime
import platform

import numpy as np
import torch

from .builder import BUILD_SEED, IMAGE_SEED, REFERENCE, TINY, WEIGHT_SEED

TOLERANCES = {
    "note": "Suggested for an independent fp32 CPU implementation loaded with sam3.pt (cast to float32).",
    "token_ids, bool outputs (masks, keep, prompt_mask), counts": "exact",
    "image resize to uint8": "exact with torchvision v2 Resize; otherwise max |diff| <= 1 LSB",
    "pixel_values": "atol 1e-6",
    "backbone features, text features, prompt tokens": "atol 1e-4, rtol 1e-4",
    "pred_logits, presence_logit_dec, iou, object_score_logit": "atol 1e-4",
    "pred_boxes, pred_boxes_xyxy (normalised)": "atol 1e-5",
    "post_boxes (pixels)": "atol 1e-3",
    "pred_masks, semantic_seg, low-res tracker logits": "atol 1e-4, rtol 1e-3",
    "post_masks_prob (float16 copy)": "atol 1e-3 (or recompute float32 from pred_masks and use atol 1e-5)",
    "f masks (float16 copy of logits up to |10|)": "atol 1e-2 (or recompute float32 from low_res_logits_filled)",
    "post_scores": "atol 1e-5",
    "hole filling": "exact when applied to the golden decoder_all_low_res_logits; a model whose low-res logits "
                    "differ by ~1e-6 can flip the sign of near-zero pixels (min |logit| is listed per case in "
                    "margins) and so the connected components: test the algorithm on golden inputs and the model "
                    "numerics on the unfilled logits",
}

NOTES = [
    "Weights: every floating tensor was rounded to a float16-representable value before any output was computed; "
    "sam3.pt stores them as float16 (complex64 RoPE tables freqs_cis unchanged). Cast to float32 when loading "
    "(load_state_dict(..., assign=False) into a float32 model does this).",
    "tracker.maskmem_backbone.out_proj: the official SimpleMaskEncoder omits out_proj when in_dim == out_dim; "
    "with d = mem_dim = 64 it was added explicitly as Conv2d(64,64,1) (used by the official forward), as the "
    "released model (256->64) always has it.",
    "Sam3TrackerBase._build_sam_heads hard-codes the two-way transformer (2 layers, mlp 2048, 8 heads) and the IoU "
    "head width (256); the tiny model rebuilds tracker.sam_mask_decoder with the same arguments and tiny sizes. "
    "SAM3InteractiveImagePredictor._bb_feat_sizes is hard-coded [(288,288),(144,144),(72,72)] and was set to "
    "[(32,32),(16,16),(8,8)].",
    "Official Sam3Processor.set_image reads (height, width) = image.shape[-2:], which is wrong for numpy HWC "
    "arrays (gives (W, 3)); only PIL images and CHW tensors are handled correctly. The golden files use a CHW "
    "uint8 tensor (PIL gives the same pixels).",
    "predict_inst: hole filling runs on CPU when scikit-image is installed (SAM2Transforms max_hole_area=256 in "
    "absolute low-res pixels = 25% of the tiny 32x32 map); it is applied to the low-res logits before the bilinear "
    "upsampling, while the returned low_res_logits are unfilled and clamped to +-32 and the returned masks are "
    "unclamped. The object-score logit is ignored in this path.",
    "Image post-processing does not clip boxes to the image (post_boxes can exceed W/H; pred_boxes_xyxy can exceed "
    "[0,1]).",
]


def _describe(v):
    if isinstance(v, torch.Tensor):
        return {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
    if isinstance(v, list):
        return {"type": "list", "len": len(v)}
    return {"type": type(v).__name__, "value": v}


def margins(cases):
    out = {}
    for k, v in cases.items():
        if k.endswith(("_decoder_all_low_res_logits", "_pred_masks")):
            out[k] = float(v.abs().min())
        elif k.endswith("_threshold_gap"):
            out[k] = float(v)
        elif k.endswith("_decoder_all_iou"):
            s = sorted(v[1:].tolist())
            out[k + " (top-2 multimask gap)"] = s[-1] - s[-2]
    return out


def build_meta(cases, case_docs, ck, hf_check, only_ours, only_ref, secs):
    """The meta.json document; ``case_docs`` maps each case family's letter to its description and fields."""
    import torchvision
    import transformers
    return {
        "reference": {"name": "sam3 (Meta, facebookresearch/sam3)", "version": REFERENCE,
                      "patches": "../shared/oracle/sam3_cpu_env.py (triton stub, CUDA allocations at construction "
                                 "moved to CPU, pin_memory no-op), ../shared/oracle/patch_torchvision_cpu.py (pure "
                                 "PyTorch roi_align); no numerical effect"},
        "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__,
        "scikit_image": __import__("skimage").__version__,
        "transformers_for_config_check": transformers.__version__, "python": platform.python_version(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "tools/oracle/make_golden_official.py",
        "generation_seconds": round(secs, 1),
        "precision": "float32 on CPU, torch.inference_mode, model.eval()",
        "seeds": {"build (torch.manual_seed before module construction)": BUILD_SEED,
                  "weights (torch.Generator for randomisation)": WEIGHT_SEED, "images": IMAGE_SEED},
        "randomisation": "as ../shared/oracle/parity_image.py: parameters that are torch.empty-initialised "
                         "(text positional_embedding, text_projection), non-finite or |x|>1e3 are replaced by "
                         "N(0,0.02); then N(0,0.02) (dim>1) or N(0,0.05) (dim<=1) noise is added to every "
                         "parameter; finally every floating parameter/buffer is rounded to float16 precision",
        "tiny_config": dict(TINY),
        "tiny_config_notes": {
            "text_width": "16 (not 32): with the full 49408-token vocabulary a width of 32 alone costs 3.2 MB "
                          "even in float16 and would push the golden files over 8 MB",
            "composition": "build_sam3_image_model(enable_inst_interactivity=True) with the sizes above; see "
                           "build_tiny_official()",
        },
        "files": {
            "sam3.pt": {"format": "torch.save of a flat dict, released sam3.pt layout (detector.* = Sam3Image keys, "
                                  "tracker.* = inst_interactive_predictor.model.* keys)",
                        "entries": len(ck),
                        "dtype": "float16 for every floating tensor (float16-exact values), complex64 for the RoPE "
                                 "tables freqs_cis",
                        "key_patterns_only_here_vs_full_size_list": only_ours,
                        "key_patterns_missing_vs_full_size_list": only_ref},
            "config.json": "Sam3VideoConfig(...).to_json_file() (what save_pretrained writes), same tiny architecture",
            "cases.pt": "torch.save dict of plain tensors / lists / floats / bools / str "
                        "(torch.load(weights_only=True) works)",
        },
        "hf_check": hf_check,
        "cases": {k: dict(case_docs[k]) for k in case_docs},
        "fields": {k: _describe(v) for k, v in cases.items()},
        "margins": margins(cases),
        "tolerances": TOLERANCES,
        "notes": NOTES,
    }
