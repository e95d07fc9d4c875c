"""The cases of the concept golden files (``tests/golden/official_concepts/cases.pt``): each runs on a fresh official
inference state (``init_state`` on the clip's frames) with the heuristics of the case, as a list of steps (see
``concept_driver``)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .concept_clip import S, make_clip
from .concept_driver import ConceptRecorder, add_click_step, add_concept_step, propagate_step
from .concept_model import video_model_of

TEXT = "shape"
NO_HEURISTICS_TEXT = "thing"  # another prompt for the released thresholds: no IoU near 0.1 there (see margins)

# ``Sam3VideoBase.__init__`` arguments that ``ConceptTrackOptions`` mirrors (the issue-14 contract), by official name.
CONTRACT_FIELDS = [
    "score_threshold_detection", "det_nms_thresh", "new_det_thresh", "assoc_iou_thresh", "trk_assoc_iou_thresh",
    "hotstart_delay", "hotstart_unmatch_thresh", "hotstart_dup_thresh", "suppress_unmatched_only_within_hotstart",
    "init_trk_keep_alive", "max_trk_keep_alive", "min_trk_keep_alive",
    "suppress_overlapping_based_on_recent_occlusion_threshold", "decrease_trk_keep_alive_for_empty_masklets",
    "fill_hole_area", "recondition_every_nth_frame", "masklet_confirmation_enable",
    "masklet_confirmation_consecutive_det_thresh",
]
# Other arguments the official algorithm reads (all at their defaults in every case).
OTHER_OFFICIAL_FIELDS = [
    "max_num_objects", "o2o_matching_masklets_enable", "suppress_det_close_to_boundary",
    "reconstruction_bbox_iou_thresh", "reconstruction_bbox_det_score",
    "use_prev_mem_frame", "use_stateless_refinement", "refinement_detector_cond_frame_removal_window",
]

# What build_sam3_video_model passes (apply_temporal_disambiguation=True: the released model; False: the
# "no heuristics" ablation, whose tracker also has use_memory_selection=False).
RELEASED = dict(score_threshold_detection=0.5, assoc_iou_thresh=0.1, det_nms_thresh=0.1, new_det_thresh=0.7,
                hotstart_delay=15, hotstart_unmatch_thresh=8, hotstart_dup_thresh=8,
                suppress_unmatched_only_within_hotstart=True, min_trk_keep_alive=-1, max_trk_keep_alive=30,
                init_trk_keep_alive=30, suppress_overlapping_based_on_recent_occlusion_threshold=0.7,
                suppress_det_close_to_boundary=False, fill_hole_area=16, recondition_every_nth_frame=16,
                masklet_confirmation_enable=False, decrease_trk_keep_alive_for_empty_masklets=False)
NO_HEURISTICS = dict(RELEASED, hotstart_delay=0, hotstart_unmatch_thresh=0, hotstart_dup_thresh=0,
                     recondition_every_nth_frame=0)

# The golden heuristics: the released values except those chosen so that, with the tiny random-weight model and the
# clip, every heuristic acts (births, hot-start removals of unmatched and duplicate tracks, re-conditioning,
# occlusion-based suppression); see meta.json "events" and README.md.
GOLDEN = dict(RELEASED)
GOLDEN.update(
    score_threshold_detection=0.7825, det_nms_thresh=0.63, new_det_thresh=0.899, assoc_iou_thresh=0.43,
    trk_assoc_iou_thresh=0.587, hotstart_delay=4, hotstart_unmatch_thresh=3, hotstart_dup_thresh=3,
    recondition_every_nth_frame=4, suppress_overlapping_based_on_recent_occlusion_threshold=0.65, fill_hole_area=16)

HEURISTICS = {"golden": GOLDEN, "no_heuristics": NO_HEURISTICS}


def _centre(clip, t, shape):
    x, y = clip["centres"][t][shape]
    return [x + 0.25, y - 0.5]


def _box(clip, t, shape):
    ys, xs = torch.nonzero(clip["masks"][shape][t], as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


REFINE_FRAME = 12


def _refine_target(steps):
    """The object the refinement click goes to: the lowest id that the first propagation returned on REFINE_FRAME
    and that is still tracked at its end."""
    prop = steps[1]
    y = [y for ps in prop["passes"] for y in ps["yields"] if y["frame"] == REFINE_FRAME][0]
    alive = prop["passes"][-1]["log"]["processed"][-1]["obj_ids_after"]
    ids = [i for i in y["out_obj_ids"] if i in alive]
    assert ids, "no object to refine"
    return ids[0]


# name -> heuristics, tracker memory selection, description, steps(clip) -> list of (op, kwargs); a kwargs value
# that is callable is computed from the steps recorded so far.
CASES = {
    "text_forward": ("golden", True,
                     "text prompt on frame 0, propagate forward (frame 0 is processed twice: by add_prompt and as the "
                     "first frame of the propagation)",
                     lambda c: [("add_concept", dict(frame=0, text=TEXT)), ("propagate", dict(direction="forward"))]),
    "text_both": ("golden", True,
                  "text prompt on frame 11, propagate both: forward 11..23, then backward 10..0 (the backward pass "
                  "continues the same tracks and bookkeeping)",
                  lambda c: [("add_concept", dict(frame=11, text=TEXT)), ("propagate", dict(direction="both"))]),
    "exemplar_box": ("golden", True,
                     "text + one positive exemplar box (around the red disc) on frame 8, propagate both; the box is a "
                     "geometric prompt of frame 8 only, but the detector run on frame 9 is computed during frame 8 "
                     "(one frame ahead, with frame 8's prompt)",
                     lambda c: [("add_concept", dict(frame=8, text=TEXT, boxes_xyxy=[_box(c, 8, "red_disc")],
                                                     box_labels=[1])),
                                ("propagate", dict(direction="both"))]),
    "no_heuristics": ("no_heuristics", False,
                      "the official no-heuristics preset (build_sam3_video_model(apply_temporal_disambiguation=False)"
                      ": no hot-start delay or removal, no re-conditioning, tracker memory selection off); the text "
                      f"{NO_HEURISTICS_TEXT!r} on frame 0, propagate forward",
                      lambda c: [("add_concept", dict(frame=0, text=NO_HEURISTICS_TEXT)),
                                 ("propagate", dict(direction="forward"))]),
    "refine_click": ("golden", True,
                     "text on frame 0, propagate forward; then one positive click (the blue square's centre) on frame "
                     f"{REFINE_FRAME} for an object found by the concept (the instance-interactivity path: a "
                     "tracker-only refinement of that object), then propagate forward again (a 'propagation_partial':"
                     " the refined object's tracker state re-tracked from frame 0, the other objects' outputs read "
                     "from the cache, no hot-start delay)",
                     lambda c: [("add_concept", dict(frame=0, text=TEXT)), ("propagate", dict(direction="forward")),
                                ("add_click", dict(frame=REFINE_FRAME, obj_id=_refine_target,
                                                   points=[_centre(c, REFINE_FRAME, "blue_square")], labels=[1])),
                                ("propagate", dict(direction="forward"))]),
}


def official_settings(vm):
    """The heuristics the official model object holds (read back, official names)."""
    out = {k: getattr(vm, k) for k in CONTRACT_FIELDS + OTHER_OFFICIAL_FIELDS}
    out["tracker.use_memory_selection"] = bool(vm.tracker.use_memory_selection)
    out["tracker.mf_threshold"] = float(vm.tracker.mf_threshold)
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in out.items()}


def pixel_check(state, frames):
    """Whether the official loader's float32 frames (FP32_FRAMES=1) equal ((u8 / 255) - 0.5) / 0.5 in float32."""
    ours = ((frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0) - 0.5) / 0.5
    theirs = state["input_batch"].img_batch
    return dict(dtype=str(theirs.dtype).replace("torch.", ""), equal=bool(torch.equal(ours, theirs)),
                max_abs_diff=float((ours - theirs).abs().max()))


@torch.inference_mode()
def run_case(model, name, clip):
    heur_name, memsel, description, steps_fn = CASES[name]
    vm = video_model_of(model, HEURISTICS[heur_name])
    trk = vm.tracker
    saved = trk.use_memory_selection
    trk.use_memory_selection = memsel
    try:
        frames = clip["frames"]
        state = vm.init_state(resource_path=[Image.fromarray(f.numpy()) for f in frames])
        assert (state["orig_height"], state["orig_width"]) == (S, S)
        pixels = pixel_check(state, frames)
        rec = ConceptRecorder(vm, state)
        steps = []
        with rec.hooks():
            for op, kw in steps_fn(clip):
                kw = {k: (v(steps) if callable(v) else v) for k, v in kw.items()}
                if op == "add_concept":
                    steps.append(add_concept_step(vm, state, rec, **kw))
                elif op == "add_click":
                    steps.append(add_click_step(vm, state, rec, **kw))
                else:
                    steps.append(propagate_step(vm, state, rec, **kw))
        settings = official_settings(vm)
    finally:
        trk.use_memory_selection = saved
    concept_options = {k: settings[k] for k in CONTRACT_FIELDS}
    return dict(description=description, heuristics_preset=heur_name, official_settings=settings,
                concept_options=concept_options, video_options=dict(memory_selection=memsel),
                num_frames=int(frames.shape[0]), video_size=[S, S], pixel_check=pixels, steps=steps)


def run_all(model, names=None):
    clip = make_clip()
    cases = {name: run_case(model, name, clip) for name in (names or CASES)}
    return clip, cases


def yielded(case):
    """Every returned frame of a case in order: (step index, pass index or None, record)."""
    out = []
    for i, st in enumerate(case["steps"]):
        if st["op"] == "propagate":
            for j, ps in enumerate(st["passes"]):
                out += [(i, j, y) for y in ps["yields"]]
        else:
            out.append((i, None, st["result"]))
    return out

