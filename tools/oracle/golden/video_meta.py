"""``meta.json`` of the video golden files: versions, seeds, the tiny video configuration, the tracker flags, the
biases, per-case descriptions, statistics that show the tracks are not trivial, what memory selection did, and the
suggested tolerances."""
from __future__ import annotations

import datetime
import platform

import numpy as np
import torch

from .builder import BUILD_SEED, REFERENCE, TINY, WEIGHT_SEED
from .video_cases import CASES
from .video_inputs import CLIPS, DISC_R, SQUARE_HALF, VIDEO_SEED, S
from .video_tracker import unpack_masks
from .video_model import BIAS_NOTES, BIASES, RELEASED_VIDEO_TRACKER_FLAGS, VIDEO_MEM_DIM

FORMAT = "sam3kit official video golden v1"

TOLERANCES = {
    "note": "Suggested for an independent fp32 CPU implementation loaded with sam3.pt (cast to float32) that stores "
            "the memories in bfloat16 as the official code does.",
    "frame order, object ids, storage kinds, memory plans (frames read), bool decisions": "exact",
    "low_res_logits, object_score_logits, obj_ptr, iou_score (fp32)": "atol 1e-4 (issue 13: 1e-4 fp32); a memory is "
        "rounded to bfloat16 before it is read, so a port whose fp32 memory differs by ~1e-6 can round a value to "
        "the neighbouring bfloat16 (a step of 2^-8 relative): compare maskmem_features with atol = 1 bfloat16 step "
        "of the value (|x| * 2^-7 + 1e-6) and expect the tracked logits of later frames to move by up to ~1e-4",
    "maskmem_features (bfloat16)": "within one bfloat16 rounding step of the stored value (|diff| <= |x| * 2^-7 + "
                                   "1e-6); exact when the fp32 inputs agree to the last bit",
    "video_res_masks (bool)": "exact except pixels whose recomputed logit is within 1e-4 of 0",
    "eff_iou_score": "atol 1e-5",
}


def _describe_case(name):
    clip, desc, _ = CASES[name]
    return dict(clip=clip, description=desc)


def track_stats(cases):
    """Per case: how many (frame, object) outputs of the propagations have a mask that is neither empty nor full,
    and the range of object-score logits."""
    out = {}
    for name, case in cases.items():
        n = nontrivial = empty = full = 0
        scores = []
        for st in case["steps"]:
            if st["op"] != "propagate":
                continue
            for y in st["yields"]:
                m = unpack_masks(y["video_res_masks_packed"], S)
                for i in range(m.shape[0]):
                    a = float(m[i].float().mean())
                    n += 1
                    empty += a == 0.0
                    full += a == 1.0
                    nontrivial += 0.0 < a < 1.0
                scores += y["object_score_logits"].flatten().tolist()
        out[name] = dict(object_frames=n, nontrivial=nontrivial, empty=empty, full=full,
                         min_object_score_logit=min(scores), max_object_score_logit=max(scores))
    return out


def memory_selection_report(cases, threshold):
    """Frames whose stored eff_iou_score is <= the threshold, and the later frames whose memory selection walked past
    them (a frame further away was kept while the low-score frame was not)."""
    out = {}
    for name, case in cases.items():
        skipped, lows = {}, {}
        for st in case["steps"]:
            if st["op"] != "propagate":
                continue
            low = {}  # per propagation step (a later propagation recomputes the frames it reaches)
            for y in st["yields"]:
                for ev in y["events"]:
                    if ev["event"] != "memory_attention" or not ev.get("used") or ev["valid_frames"] is None:
                        continue
                    t, valid = ev["frame"], ev["valid_frames"]
                    for f in low:
                        beyond = [v for v in valid if (v > f if ev["reverse"] else v < f)]
                        ahead = (f > t) if ev["reverse"] else (f < t)
                        if ahead and f not in valid and beyond:
                            skipped.setdefault(str(f), []).append(t)
                if "eff_iou_score" in y and y["eff_iou_score"] <= threshold:
                    low[y["frame"]] = y["eff_iou_score"]
            lows.update(low)
        if lows:
            out[name] = dict(low_score_frames={str(k): v for k, v in lows.items()}, skipped_by_later_frames=skipped)
    return out


def build_meta(cases, ck, secs, threads, determinism, sha256, only_ours, only_ref, sizes):
    import transformers
    tiny = dict(TINY, mem_dim=VIDEO_MEM_DIM)
    return {
        "format": FORMAT,
        "reference": {"name": "sam3 (Meta, facebookresearch/sam3)", "version": REFERENCE,
                      "class": "sam3.model.sam3_tracking_predictor.Sam3TrackerPredictor (driven directly)",
                      "patches": "the oracle environment's sam3_cpu_env.py (triton stub, CUDA allocations at "
                                 "construction moved to the CPU, pin_memory no-op) and sam3_video_cpu_env.py "
                                 "(Tensor.cuda() -> identity, init_state(offload_state_to_cpu=True) so the state is "
                                 "stored on the CPU; FP32_FRAMES=1 is irrelevant here since the frames are given to "
                                 "the state directly); the official bfloat16 CUDA autocast entered by the predictor is "
                                 "a no-op on the CPU; no effect on the fp32 numerics"},
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "transformers_for_config_json": transformers.__version__,
        "torch_num_threads": threads,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "tools/oracle/make_golden_video.py",
        "generation_seconds": round(secs, 1),
        "determinism": determinism,
        "precision": "float32 on CPU, torch.inference_mode, model.eval(); memories stored in bfloat16 by the official "
                     "predictor (maskmem_features.to(torch.bfloat16)), read back and concatenated with the float32 "
                     "pointers (type promotion to float32)",
        "seeds": {"build (torch.manual_seed before module construction)": BUILD_SEED,
                  "weights (torch.Generator for randomisation)": WEIGHT_SEED, "clips": VIDEO_SEED},
        "tiny_config": tiny,
        "tiny_config_notes": {
            "composition": "build_sam3_image_model(enable_inst_interactivity=True) at the sizes of the image golden "
                           "files (tools/oracle/golden/builder.py), except the tracker: mem_dim 32 (released 64) "
                           "with hidden 64 (released 256) so that an object pointer is split into hidden/mem_dim = 2 "
                           "memory tokens (released: 4), and use_memory_selection=True as in the video model",
            "why not the image golden weights": "there d = mem_dim = 64 (transformers hard-codes 64), so the pointer "
                                                "split would not be exercised",
        },
        "tracker_flags": RELEASED_VIDEO_TRACKER_FLAGS,
        "tracker_flags_source": "sam3.model_builder.build_tracker(apply_temporal_disambiguation=True), the tracker of "
                                "build_sam3_video_model, plus Sam3TrackerPredictor.__init__ constants "
                                "(iter_use_prev_mask_pred, add_all_frames_to_correct_as_cond, "
                                "max_point_num_in_prompt_enc default 16) and Sam3TrackerBase defaults "
                                "(keep_first_cond_frame, max_obj_ptrs_in_encoder, memory_temporal_stride_for_eval, "
                                "mf_threshold)",
        "weights": {
            "randomisation": "the image golden files' recipe (builder.randomise, seed above): parameters that are "
                             "torch.empty-initialised, non-finite or |x|>1e3 replaced by N(0,0.02); N(0,0.02) (dim>1) "
                             "or N(0,0.05) (dim<=1) noise added to every parameter; every floating tensor rounded to "
                             "float16 precision",
            "biases_added_after_randomisation": BIASES,
            "bias_notes": BIAS_NOTES,
            "mask_decoder_scaling": "none",
            "sam3.pt": {"format": "torch.save of a flat dict in the released sam3.pt layout (detector.* / tracker.*), "
                                  "float16 for every floating tensor (float16-exact values, biases included), "
                                  "complex64 RoPE tables", "entries": len(ck), "sha256": sha256,
                        "key_patterns_only_here_vs_full_size_list": only_ours,
                        "key_patterns_missing_vs_full_size_list": only_ref},
            "config.json": "Sam3VideoConfig(...).to_json_file(): the same architecture in the Hugging Face format "
                           "(tracker_config.memory_encoder_output_channels = 32; transformers itself cannot run it, "
                           "its memory cross-attention hard-codes 64 key/value channels)",
        },
        "clips": {name: dict(spec, disc_radius=DISC_R, square_half_side=SQUARE_HALF) for name, spec in CLIPS.items()},
        "pixel_values": "frames are uint8 (T, S, S, 3) at the model size S = 112 (no resize); the official state "
                        "received state['images'] = ((u8.permute(0,3,1,2).float() * (1/255) - 0.5) / 0.5), the "
                        "official image path's formula, in float32 (the official video loaders compute it in float16)",
        "cases": {name: _describe_case(name) for name in cases},
        "track_stats": track_stats(cases),
        "memory_selection": memory_selection_report(cases, RELEASED_VIDEO_TRACKER_FLAGS["mf_threshold"]),
        "file_sizes_bytes": sizes,
        "official_limitations": [
            "Objects first prompted on different frames before the first propagation crash the official predictor: "
            "the preflight's Sam3TrackerPredictor._get_empty_mask_ptr calls track_step(..., gt_masks=None, "
            "frames_to_add_correction_pt=[]), which Sam3TrackerBase.track_step does not accept (TypeError). No case "
            "covers it; the released video model gives every clicked object its own tracker state.",
            "Memory selection never dropped a frame here (see memory_selection and README.md).",
        ],
        "control_flow": "README.md, section 'What the official control flow does'; every step of cases.pt carries "
                        "its event log",
        "tolerances": TOLERANCES,
    }
