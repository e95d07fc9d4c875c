"""``meta.json`` of the concept golden files: versions, seeds, the model and its weight changes, the clip, the
heuristics of every case, what the official code did (event counts) and how far every thresholded value of the
recorded runs lies from its threshold (``margins``: a port within the tolerances cannot decide differently)."""
from __future__ import annotations

import datetime
import platform

import numpy as np
import torch

from .builder import BUILD_SEED, REFERENCE, TINY, WEIGHT_SEED
from .concept_cases import CASES, GOLDEN, NO_HEURISTICS, RELEASED, TEXT, yielded
from .concept_clip import CLIP_SEED, NUM_FRAMES, PIXEL_NOISE, S, clip_summary
from .video_tracker import unpack_masks
from .concept_model import (CONCEPT_BIASES, CONCEPT_NOTES, CONCEPT_SCALES, VIDEO_DETECTOR_KWARGS,
                            VIDEO_INFERENCE_KWARGS)
from .video_model import BIAS_NOTES, BIASES, RELEASED_VIDEO_TRACKER_FLAGS, VIDEO_MEM_DIM

FORMAT = "sam3kit official concept golden v1"
HIGH_CONF_THRESH = 0.8   # official constants of _associate_det_trk / _recondition_masklets
HIGH_IOU_THRESH = 0.8
SHRINK_THRESH = 0.3      # Sam3TrackerPredictor._suppress_shrinked_masks

TOLERANCES = {
    "frame order, object ids, events": "exact",
    "out_probs (scores)": "atol 1e-4",
    "out_binary_masks": "exact except the pixels marked in uncertain_pixels_packed: where a returned object's "
                        "video-size logit is within 1e-4 of 0, or where two returned objects whose tracker scores "
                        "differ by less than 1e-3 both claim the pixel (the object-wise non-overlap decides them)",
    "out_boxes_xywh": "as pixels (x * W, ...): exact where the mask is exact; the official boxes are those of the "
                      "masks before the object-wise non-overlap (box_is_box_of_returned_mask says where they "
                      "differ from the returned mask's box)",
    "tracker_object_score_logits, detection scores (debugging aids)": "atol 1e-4; output_low_res_logits_fp16 and "
        "low_res_logits_fp16 are float16 copies (debugging aids, not for comparison)",
}


def processed_logs(case):
    """Every processed frame (``_det_track_one_frame``) of a case, in order, with the step it belongs to."""
    out = []
    for i, st in enumerate(case["steps"]):
        logs = [st["log"]] if st["op"] != "propagate" else [ps["log"] for ps in st["passes"]]
        for lg in logs:
            out += [(i, f) for f in lg["processed"]]
    return out


def detector_runs(case):
    out = []
    for st in case["steps"]:
        logs = [st["log"]] if st["op"] != "propagate" else [ps["log"] for ps in st["passes"]]
        for lg in logs:
            out += lg["detector_runs"]
    return out


def event_counts(case):
    prompt_frames = {st["frame"] for st in case["steps"] if st["op"] == "add_concept"}
    c = dict(frames_processed=0, births=0, births_on_later_frames=0, hotstart_removed_unmatched=0,
             hotstart_removed_duplicate=0, reconditioned=0, reconditioned_on_tracked_frames=0,
             occlusion_suppressed=0, area_shrink_suppressed=0, keep_alive_suppressed=0, nms_suppressed=0,
             frames_without_new_detections=0, frames_yielded=0, partial_propagation_frames=0,
             objects_returned=0, objects_hidden_when_returned=0, frames_with_overlapping_objects=0, near_tie_pixels=0,
             uncertain_pixels=0, memory_without_pointers_cpu_shim=0)
    born_at = {}
    for _, f in processed_logs(case):
        c["frames_processed"] += 1
        c["births"] += len(f["births"])
        for b in f["births"]:
            born_at[b] = f["frame"]
        c["births_on_later_frames"] += len(f["births"]) if f["frame"] not in prompt_frames else 0
        hs = f["hotstart"] or {}
        reasons = [v["reason"] for v in hs.get("newly_removed", {}).values()]
        c["hotstart_removed_unmatched"] += reasons.count("unmatched")
        c["hotstart_removed_duplicate"] += reasons.count("duplicate")
        c["reconditioned"] += len(f["reconditioned"])
        c["reconditioned_on_tracked_frames"] += sum(1 for r in f["reconditioned"] if born_at.get(r["obj_id"]) !=
                                                    f["frame"] and f["frame"] not in prompt_frames)
        c["occlusion_suppressed"] += len((f["occlusion"] or {}).get("suppressed", []))
        c["area_shrink_suppressed"] += len(f["area_shrink_suppressed"])
        c["keep_alive_suppressed"] += len(hs.get("suppressed_obj_ids", []))
        c["frames_without_new_detections"] += 0 if f["allow_new_detections"] else 1
    for r in detector_runs(case):
        if r["nms_keep"] is not None:
            above = r["probs"] > case["concept_options"]["score_threshold_detection"]
            c["nms_suppressed"] += int((above & ~torch.tensor(r["nms_keep"])).sum())
    for st in case["steps"]:
        logs = [st["log"]] if st["op"] != "propagate" else [ps["log"] for ps in st["passes"]]
        for lg in logs:
            c["partial_propagation_frames"] += len(lg["partial"])
            c["memory_without_pointers_cpu_shim"] += lg["memory_without_pointers"]
    for _, _, y in yielded(case):
        c["frames_yielded"] += 1
        c["objects_returned"] += len(y["out_obj_ids"])
        c["objects_hidden_when_returned"] += len(set(y["removed_obj_ids_now"]) | set(y["suppressed_obj_ids_of_frame"]))
        c["frames_with_overlapping_objects"] += y["nonoverlap_min_score_gap"] is not None
        c["near_tie_pixels"] += y["near_tie_pixels"]
        c["uncertain_pixels"] += int(unpack_masks(y["uncertain_pixels_packed"][None], S).sum())
    return c


def _min_gap(values, thr):
    values = [float(v) for v in values]
    return min((abs(v - thr) for v in values), default=None)


def margins(case):
    """Per kind of decision: the smallest distance between a recorded value and its threshold (None if the
    decision was never taken)."""
    o = case["concept_options"]
    m = {}

    def upd(key, gap):
        if gap is not None:
            m[key] = gap if m.get(key) is None else min(m[key], gap)

    for r in detector_runs(case):
        upd("det_prob_vs_score_threshold_detection", _min_gap(r["probs"].tolist(), o["score_threshold_detection"]))
        if r.get("nms_ious_of_valid") is not None and r["nms_ious_of_valid"].shape[0] > 1:
            x = r["nms_ious_of_valid"]
            off = x[~torch.eye(x.shape[0], dtype=torch.bool)]
            upd("nms_iou_vs_det_nms_thresh", _min_gap(off.tolist(), o["det_nms_thresh"]))
    for _, f in processed_logs(case):
        s = f["detections"]["scores"].tolist()
        upd("kept_det_score_vs_new_det_thresh", _min_gap(s, o["new_det_thresh"]))
        upd("kept_det_score_vs_0.8_high_conf", _min_gap(s, HIGH_CONF_THRESH))
        a = f["association"]
        if a is not None and a["ious"].numel():
            x = a["ious"].flatten().tolist()
            upd("det_trk_iou_vs_assoc_iou_thresh", _min_gap(x, o["assoc_iou_thresh"]))
            upd("det_trk_iou_vs_trk_assoc_iou_thresh", _min_gap(x, o["trk_assoc_iou_thresh"]))
            upd("det_trk_iou_vs_0.8_high_iou", _min_gap(x, HIGH_IOU_THRESH))
        if "tracker_object_score_logits" in f and f["tracker_object_score_logits"].numel():
            upd("tracker_object_score_logit_vs_0", _min_gap(f["tracker_object_score_logits"].tolist(), 0.0))
        for cd in f["recondition_candidates"]:
            upd("tracker_object_score_logit_vs_0.8_recondition", abs(cd["tracker_object_score_logit"] - 0.8))
        oc = f["occlusion"]
        if oc is not None and oc["ious"] is not None:
            iou = oc["ious"]
            off = iou[~torch.eye(iou.shape[0], dtype=torch.bool)]
            upd("track_track_iou_vs_occlusion_threshold",
                _min_gap(off.tolist(), o["suppress_overlapping_based_on_recent_occlusion_threshold"]))
        if "area_shrink_ratio" in f:
            upd("area_shrink_ratio_vs_0.3", _min_gap(f["area_shrink_ratio"], SHRINK_THRESH))
    for st in case["steps"]:
        for ps in st.get("passes", []):
            for f in ps["log"]["partial"]:
                upd("tracker_object_score_logit_vs_0", _min_gap(f["object_score_logits"].tolist(), 0.0))
    return {k: (None if v is None else round(v, 6)) for k, v in sorted(m.items())}


def describe_case(name, case):
    steps = []
    for st in case["steps"]:
        if st["op"] == "propagate":
            steps.append(dict(op="propagate", direction=st["direction"], official_calls=st["official_calls"],
                              passes=[dict(reverse=ps["reverse"], propagation_type=ps["propagation_type"],
                                           frames=[y["frame"] for y in ps["yields"]]) for ps in st["passes"]]))
        else:
            d = dict(op=st["op"], frame=st["frame"], official_call=st["official_call"])
            for k in ("text", "obj_id"):
                if k in st:
                    d[k] = st[k]
            for k in ("boxes_xyxy", "box_labels", "points", "labels"):
                if k in st:
                    d[k] = st[k].tolist()
            steps.append(d)
    return dict(description=CASES[name][2], heuristics_preset=case["heuristics_preset"],
                official_settings=case["official_settings"], video_options=case["video_options"],
                pixel_check=case["pixel_check"], steps=steps, events=event_counts(case), margins=margins(case))


def build_meta(cases, clip, ck, secs, threads, determinism, sha256, only_ours, only_ref, sizes):
    import transformers
    return {
        "format": FORMAT,
        "reference": {"name": "sam3 (Meta, facebookresearch/sam3)", "version": REFERENCE,
                      "class": "sam3.model.sam3_video_inference.Sam3VideoInferenceWithInstanceInteractivity "
                               "(driven as Sam3VideoPredictor drives it)",
                      "patches": "the oracle environment's sam3_cpu_env.py (triton stub, CUDA allocations at "
                                 "construction moved to the CPU, pin_memory no-op) and sam3_video_cpu_env.py "
                                 "(Tensor.cuda() -> identity; tracker states stored on the CPU; the detector's "
                                 "bfloat16 cast of the tracker-neck features for all-gather skipped; the CPU "
                                 "connected components accept an empty batch; FP32_FRAMES=1: the official PIL-list "
                                 "loader keeps frames in float32 instead of float16); the bfloat16 CUDA autocast of "
                                 "the official code is a no-op on the CPU"},
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "transformers_for_config_json": transformers.__version__, "torch_num_threads": threads,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "tools/oracle/make_golden_concepts.py", "generation_seconds": round(secs, 1),
        "determinism": determinism,
        "precision": "float32 on CPU, torch.inference_mode, eval(); tracker memories stored in bfloat16 by the "
                     "official tracker",
        "seeds": {"build (torch.manual_seed before module construction)": BUILD_SEED,
                  "weights (torch.Generator for randomisation)": WEIGHT_SEED, "clip": CLIP_SEED},
        "tiny_config": dict(TINY, mem_dim=VIDEO_MEM_DIM),
        "model": {
            "composition": "build_sam3_video_model at tiny size: Sam3VideoInferenceWithInstanceInteractivity("
                           "detector=Sam3ImageOnVideoMultiGPU(<the image golden files' detector modules>, "
                           "**video_detector_kwargs), tracker=<the video golden files' Sam3TrackerPredictor>, "
                           "**video_inference_kwargs, **<case heuristics>)",
            "video_detector_kwargs": VIDEO_DETECTOR_KWARGS,
            "video_detector_kwargs_note": "supervise_joint_box_scores=True makes the detection score "
                                          "sigmoid(clamp(inverse_sigmoid(sigmoid(class_logit) * sigmoid(presence_"
                                          "logit)), -10, 10)) (inverse_sigmoid clamps to [1e-3, 1 - 1e-3]); "
                                          "use_early_fusion and semantic_segmentation_head are unused keyword "
                                          "arguments of the official constructor",
            "video_inference_kwargs": {k: list(v) if isinstance(v, tuple) else v
                                       for k, v in VIDEO_INFERENCE_KWARGS.items()},
            "tracker_flags": RELEASED_VIDEO_TRACKER_FLAGS,
            "text_prompt": TEXT,
            "tokenizer": "the official SimpleTokenizer with the CLIP BPE vocabulary (sam3kit bundles the same "
                         "vocabulary, so the folder holds no tokenizer files)",
        },
        "weights": {
            "randomisation": "the image golden files' recipe (builder.randomise, seeds above), then the video golden "
                             "files' bias, then the concept scales and biases (each result rounded to float16)",
            "video_biases": BIASES, "video_bias_notes": BIAS_NOTES,
            "concept_scales": CONCEPT_SCALES, "concept_biases": CONCEPT_BIASES, "concept_notes": CONCEPT_NOTES,
            "sam3.pt": {"format": "torch.save of a flat dict in the released sam3.pt layout (detector.* / tracker.*), "
                                  "float16 for every floating tensor (float16-exact values), complex64 RoPE tables",
                        "entries": len(ck), "sha256": sha256,
                        "key_patterns_only_here_vs_full_size_list": only_ours,
                        "key_patterns_missing_vs_full_size_list": only_ref},
            "config.json": "Sam3VideoConfig(...).to_json_file(), the same architecture in the Hugging Face format "
                           "(tracker_config.memory_encoder_output_channels = 32)",
        },
        "clip": {"num_frames": NUM_FRAMES, "size": [S, S], "seed": CLIP_SEED, "pixel_noise_std": PIXEL_NOISE,
                 "shapes": clip_summary(clip)},
        "heuristics": {"released (build_sam3_video_model, apply_temporal_disambiguation=True)": RELEASED,
                       "no_heuristics (apply_temporal_disambiguation=False; tracker use_memory_selection=False)":
                           NO_HEURISTICS,
                       "golden": GOLDEN},
        "cases": {name: describe_case(name, case) for name, case in cases.items()},
        "file_sizes_bytes": sizes,
        "tolerances": TOLERANCES,
        "cpu_shims_of_this_generator": [
            "A tracked frame whose memory holds no object pointer (in the refinement's partial propagation: the "
            "frames before the click, where the only conditioning frame lies ahead) hands the official memory "
            "attention its bfloat16 memories alone, which fails in float32 on a CPU (on a GPU the official autocast "
            "runs it in bfloat16); concept_driver promotes that memory to float32, as the concatenation with "
            "pointers does on every other frame (events: memory_without_pointers_cpu_shim)."],
        "control_flow": "README.md, section 'What the official code does'",
    }
