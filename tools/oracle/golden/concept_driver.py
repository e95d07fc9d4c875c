"""Driving the official detect-and-track model (``Sam3VideoInferenceWithInstanceInteractivity``) through a case and
recording what it does, frame by frame.

The calls are those of the official ``Sam3VideoPredictor`` (``add_prompt`` with normalised boxes and points,
``propagate_in_video`` forward then backward for ``both``), made on the model directly (the predictor class builds
the full-size model on CUDA). Wrappers on the model's methods record, without touching the numerics:

- every detector run (``_build_multigpu_buffer_next_chunk``: the frame, the geometric prompt it was given, every
  query's probability before NMS, which ones NMS kept);
- for every processed frame (``_det_track_one_frame``): the detections kept, the tracker's propagated object scores
  and logits, the association (IoU matrix and its decisions), the hot-start bookkeeping (removals with their reason,
  keep-alive, unmatched counts, duplicate pairs), re-conditioning, occlusion-based suppression, the memory update's
  area shrinkage, births and removals, the low-res logits that became the frame's outputs, and the tracker states
  (which objects are tracked together);
- every tracker-only frame of a partial propagation (after a refinement click);
- every returned frame (``add_prompt`` and each ``propagate_in_video`` yield): what the official predictor returns
  (``out_obj_ids``, ``out_probs``, ``out_boxes_xywh``, ``out_binary_masks`` packed) and the ids hidden at that moment.

Everything recorded is a plain tensor, list, dict with str keys, int, float, bool, str or None.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager

import numpy as np
import torch

import sam3.model.sam3_image as official_image
import torch.nn.functional as F

from sam3.model.sam3_tracker_utils import fill_holes_in_mask_scores
from sam3.perflib.masks_ops import mask_iou

from .recording import tensor_copy
from .video_tracker import _wrap, pack_masks as _pack_nonempty


UNCERTAIN_LOGIT = 1e-4   # a returned pixel whose video-size logit is within this of 0 is "uncertain" (see README)
NEAR_TIE = 1e-3          # two returned objects whose tracker scores differ by less share "uncertain" pixels


def pack_masks(m):
    """``video_tracker.pack_masks`` (row-major bits, first pixel in the most significant bit), also for no mask."""
    if m.numel() == 0:
        return torch.zeros(*m.shape[:-2], m.shape[-2] * m.shape[-1] // 8, dtype=torch.uint8)
    return _pack_nonempty(m)


def _ints(x):
    return [int(v) for v in np.asarray(x).reshape(-1).tolist()]


def _prompt_boxes(prompt):
    """A geometric ``Prompt`` -> (boxes cxcywh normalised (K, 4) as lists, labels (K,))."""
    if prompt is None or prompt.box_embeddings is None or prompt.box_embeddings.shape[0] == 0:
        return [], []
    return prompt.box_embeddings[:, 0].tolist(), prompt.box_labels[:, 0].long().tolist()


class ConceptRecorder:
    """Wrappers on one official video model for one case; ``take`` hands over what was recorded since the last
    call."""

    def __init__(self, vm, state):
        self.vm, self.state, self.trk = vm, state, vm.tracker
        self.detector_runs = []      # every detector run, in order
        self.frame_logs = []         # every _det_track_one_frame call, in order
        self.partial_logs = []       # every tracker-only frame of a partial propagation
        self._cur = None             # the frame log being filled
        self._nms = []
        self._context = []           # "recondition" / "birth" while inside those calls
        self._recondition_masks = []
        self.memory_without_pointers = 0   # frames the memory dtype shim acted on (see _memory_dtype_shim)
        self.uncertain = {}                # (frame, obj_id) -> (H, W) bool: |logit| < UNCERTAIN_LOGIT, latest
        self._nonoverlap_gap, self._tie_pixels = None, None

    # ---------------------------------------------------------------- detector
    def _build_before(self, kw):
        self._nms.clear()
        boxes, labels = _prompt_boxes(kw["geometric_prompt"])
        return dict(frame=int(kw["frame_idx_begin"]), geometric_prompt_boxes_cxcywh=boxes,
                    geometric_prompt_labels=labels, run_nms=bool(kw["run_nms"]))

    def _build_after(self, kw, out, ev):
        buf = kw["multigpu_buffer"][ev["frame"]]
        probs_after = buf["pred_logits"][0][0].squeeze(-1).sigmoid()
        if self._nms:
            (probs, keep, ious), = self._nms
            ev["probs"] = tensor_copy(probs)
            ev["nms_keep"] = [bool(v) for v in keep.tolist()]
            ev["nms_ious_of_valid"] = tensor_copy(ious)  # among the queries with prob > score_threshold_detection
        else:
            ev["probs"] = tensor_copy(probs_after)
            ev["nms_keep"] = None
        ev["probs_after_nms"] = tensor_copy(probs_after)
        self.detector_runs.append(ev)

    def _nms_wrapper(self, orig):
        def nms_masks(pred_probs, pred_masks, prob_threshold, iou_threshold):
            keep = orig(pred_probs=pred_probs, pred_masks=pred_masks, prob_threshold=prob_threshold,
                        iou_threshold=iou_threshold)
            valid = pred_probs > prob_threshold
            m = pred_masks[valid] > 0
            self._nms.append((pred_probs.detach().clone(), keep.detach().clone(), mask_iou(m, m).float()))
            return keep
        return nms_masks

    def _detection_after(self, kw, det_out, tok):
        if self._cur is None or self._cur.get("detections") is not None:
            return  # a feature-only detector pass (refinement click, partial propagation)
        self._cur["detections"] = dict(
            scores=tensor_copy(det_out["scores"].float()), boxes_xyxy=tensor_copy(det_out["bbox"].float()),
            masks_packed=pack_masks(det_out["mask"] > 0))

    # ---------------------------------------------------------------- one frame
    def _frame_before(self, kw):
        self._cur = dict(frame=int(kw["frame_idx"]), reverse=bool(kw["reverse"]),
                         allow_new_detections=bool(kw["allow_new_detections"]),
                         geometric_prompt_boxes_cxcywh=_prompt_boxes(kw["geometric_prompt"])[0],
                         detections=None, births=[], removed_from_tracker=[], reconditioned=[],
                         recondition_candidates=[], occlusion=None, area_shrink_suppressed=[],
                         hotstart=None, association=None)
        return self._cur

    def _frame_after(self, kw, out, log):
        obj_id_to_mask, obj_id_to_score, states, meta_new, stats, _ = out
        log["output_obj_ids"] = [int(i) for i in obj_id_to_mask]
        log["obj_id_to_score"] = {str(int(k)): float(v) for k, v in obj_id_to_score.items()}
        log["tracker_states"] = [[int(i) for i in s["obj_ids"]] for s in states]
        log["obj_ids_after"] = _ints(meta_new["obj_ids_all_gpu"])
        log["max_obj_id_after"] = int(meta_new["max_obj_id"])
        log["last_occluded_after"] = {str(int(k)): int(v.item()) for k, v in
                                      meta_new["obj_id_to_last_occluded"].items()}
        log["frame_stats"] = {k: int(v) for k, v in stats.items()}
        self.frame_logs.append(log)
        self._cur = None

    def _propagation_after(self, kw, out, tok):
        if self._cur is None:
            return
        masks, scores = out
        self._cur["tracked_obj_ids"] = _ints(kw["tracker_metadata_prev"]["obj_ids_all_gpu"])
        self._cur["tracker_object_score_logits"] = tensor_copy(scores.float())
        # after hole filling, before occlusion suppression
        self._cur["tracker_masks_packed"] = pack_masks(masks > 0)

    def _associate_after(self, kw, out, tok):
        if self._cur is None:
            return
        new_inds, unmatched, det_to_trk, high_conf, empty = out
        det_m, trk_m = kw["det_masks"], kw["trk_masks"]
        if det_m.shape[0] and trk_m.shape[0]:
            assert det_m.shape[-2:] == trk_m.shape[-2:]
            ious = mask_iou(det_m > 0, trk_m > 0)
        else:
            ious = torch.zeros(det_m.shape[0], trk_m.shape[0])
        self._cur["association"] = dict(
            ious=tensor_copy(ious.float()), trk_obj_ids=_ints(kw["trk_obj_ids"]),
            new_det_inds=_ints(new_inds), unmatched_trk_obj_ids=_ints(unmatched), empty_trk_obj_ids=_ints(empty),
            det_to_matched_trk_obj_ids={str(int(d)): _ints(v) for d, v in det_to_trk.items()},
            trk_id_to_max_iou_high_conf_det={str(int(k)): int(v) for k, v in high_conf.items()})

    def _hotstart_after(self, kw, out, tok):
        removed, md = out
        vm = self.vm
        frame, reverse = int(kw["frame_idx"]), bool(kw["reverse"])
        diff = frame - vm.hotstart_delay if not reverse else frame + vm.hotstart_delay
        first = md["obj_first_frame_idx"]

        def within(oid):
            return (first[oid] > diff and not reverse) or (first[oid] < diff and reverse)

        reasons = {}
        for oid in sorted(int(i) for i in removed):
            frames = md["unmatched_frame_inds"].get(oid, [])
            if len(frames) >= vm.hotstart_unmatch_thresh and within(oid):
                reasons[str(oid)] = dict(reason="unmatched", unmatched_frames=[int(f) for f in frames])
                continue
            pairs = [(int(a), [int(f) for f in fr]) for (a, b), fr in md["overlap_pair_to_frame_inds"].items()
                     if b == oid and len(fr) >= vm.hotstart_dup_thresh]
            assert pairs and within(oid), (oid, frame)
            reasons[str(oid)] = dict(reason="duplicate", duplicate_of=pairs[0][0], overlap_frames=pairs[0][1])
        self._cur["hotstart"] = dict(
            hotstart_diff=int(diff), newly_removed=reasons,
            obj_first_frame_idx={str(int(k)): int(v) for k, v in first.items()},
            unmatched_frame_inds={str(int(k)): [int(f) for f in v] for k, v in md["unmatched_frame_inds"].items()},
            trk_keep_alive={str(int(k)): int(v) for k, v in md["trk_keep_alive"].items()},
            overlap_pair_to_frame_inds={f"{int(a)},{int(b)}": [int(f) for f in v]
                                        for (a, b), v in md["overlap_pair_to_frame_inds"].items()},
            removed_obj_ids=sorted(int(i) for i in md["removed_obj_ids"]),
            suppressed_obj_ids=sorted(int(i) for i in md["suppressed_obj_ids"][frame]))

    def _recondition_before(self, kw):
        self._context.append("recondition")
        self._recondition_masks.clear()
        ids = _ints(kw["tracker_metadata"]["obj_ids_all_gpu"])
        scores = kw["tracker_obj_scores_global"]
        self._cur["recondition_candidates"] = [
            dict(obj_id=int(tid), det_index=int(d), tracker_object_score_logit=float(scores[ids.index(int(tid))]))
            for tid, d in kw["trk_id_to_max_iou_high_conf_det"].items()]

    def _recondition_after(self, kw, out, tok):
        self._context.pop()
        self._cur["reconditioned"] = [dict(obj_id=o, frame=f, mask_pixels=n) for o, f, n in self._recondition_masks]

    def _add_new_mask_before(self, kw):
        if self._context and self._context[-1] == "recondition":
            self._recondition_masks.append((int(kw["obj_id"]), int(kw["frame_idx"]), int(kw["mask"].sum())))

    def _suppress_after(self, kw, out, tok):
        if self._cur is None:
            return
        masks = kw["binary_low_res_masks"]
        ids = [int(i) for i in kw["obj_ids"]]
        thr = self.vm.suppress_overlapping_based_on_recent_occlusion_threshold
        pairs = []
        if len(ids) > 1:
            iou = mask_iou(masks, masks)
            for i in range(len(ids)):
                for j in range(i + 1, len(ids)):
                    if iou[i, j] >= thr:
                        pairs.append([ids[i], ids[j], float(iou[i, j])])
        self._cur["occlusion"] = dict(
            obj_ids=ids, last_occluded_before=[int(v) for v in kw["last_occluded"].tolist()],
            empty=[ids[i] for i in range(len(ids)) if not bool(masks[i].any())],
            ious=tensor_copy(mask_iou(masks, masks).float()) if len(ids) > 1 else None,
            overlapping_pairs=pairs, suppressed=[ids[i] for i in range(len(ids)) if bool(out[i])])

    def _shrink_before(self, kw):
        """``_suppress_shrinked_masks(pred_masks, new_pred_masks)`` of the memory update: the area ratio of each
        tracked object after / before the pixel-wise non-overlap (at the memory encoder's input size)."""
        if self._cur is None:
            return
        ids = self._cur.get("tracked_obj_ids", [])
        before = (kw["pred_masks"] > 0).sum(dim=(-1, -2)).clamp(min=1.0)
        after = (kw["new_pred_masks"] > 0).sum(dim=(-1, -2))
        ratio = (after / before).flatten().tolist()
        self._cur["area_shrink_ratio"] = [float(r) for r in ratio]
        self._cur["area_shrink_suppressed"] = [ids[i] for i, r in enumerate(ratio) if r < kw["shrink_threshold"]]

    def _add_objects_before(self, kw):
        self._context.append("birth")
        if self._cur is not None:
            self._cur["births"] = _ints(kw["new_obj_ids"])

    def _add_objects_after(self, kw, out, tok):
        self._context.pop()

    def _remove_objects_before(self, kw):
        if self._cur is not None:
            self._cur["removed_from_tracker"] = sorted(int(i) for i in kw["obj_ids"])

    def _build_outputs_after(self, kw, out, tok):
        """The low-res logits that ``build_outputs`` upsampled for each output object: the tracked objects' (after
        hole filling and occlusion suppression) then the new detections' (after hole filling)."""
        trk = kw["tracker_low_res_masks_global"]
        plan = kw["tracker_update_plan"]
        new = kw["det_out"]["mask"][torch.from_numpy(plan["new_det_fa_inds"])].unsqueeze(1)
        new = fill_holes_in_mask_scores(new, max_area=self.vm.fill_hole_area, fill_holes=True, remove_sprinkles=True)
        logits = torch.cat([trk.float(), new[:, 0].float()], dim=0)
        ids = _ints(kw["tracker_metadata_prev"]["obj_ids_all_gpu"]) + _ints(plan["new_det_obj_ids"])
        assert ids == [int(i) for i in out], (ids, list(out))
        self._cur["output_low_res_logits_fp16"] = tensor_copy(logits, torch.float16)
        self._cur["output_logits_obj_ids"] = ids
        self._set_uncertain(self._cur["frame"], ids, self._video_res(logits[:, None]))

    # ---------------------------------------------------------------- partial propagation (tracker only)
    def _partial_after(self, kw, out, tok):
        if self._cur is not None or not kw.get("run_mem_encoder"):
            return  # the per-frame propagation of _det_track_one_frame (recorded there)
        ids, masks, scores = out
        frame = int(kw["frame_idx"])
        refined = self.state["action_history"][-1]["obj_ids"]  # the partial propagation's objects
        self.partial_logs.append(dict(frame=frame, reverse=bool(kw["reverse"]), obj_ids=[int(i) for i in ids],
                                      refined_obj_ids=_ints(refined), object_score_logits=tensor_copy(scores.float()),
                                      low_res_logits_fp16=tensor_copy(masks, torch.float16)))
        keep = [i for i, o in enumerate(ids) if o in set(_ints(refined))]
        self._set_uncertain(frame, [int(ids[i]) for i in keep], self._video_res(masks[keep][:, None]))

    # ---------------------------------------------------------------- refinement click
    def _add_points_after(self, kw, out, tok):
        """The video-size logits of a refinement click, hole-filled as ``add_tracker_new_points`` does."""
        frame, obj_ids, _, video_res = out
        obj_id = kw["kwargs"]["obj_id"]  # add_new_points(*args, **kwargs): the official call passes keywords
        filled = fill_holes_in_mask_scores(video_res, max_area=self.vm.fill_hole_area, fill_holes=True,
                                           remove_sprinkles=True)
        i = list(obj_ids).index(obj_id)
        self._set_uncertain(int(frame), [int(obj_id)], filled[i:i + 1])

    # ---------------------------------------------------------------- what the returned masks were made from
    def _video_res(self, low_res):
        """(N, 1, L, L) -> (N, 1, H, W) bilinear, as build_outputs and the partial propagation upsample."""
        H, W = self.state["orig_height"], self.state["orig_width"]
        return F.interpolate(low_res.float(), size=(H, W), mode="bilinear", align_corners=False)

    def _set_uncertain(self, frame, ids, video_res_logits):
        for oid, lg in zip(ids, video_res_logits):
            self.uncertain[(frame, int(oid))] = lg[0].abs() < UNCERTAIN_LOGIT

    def _nonoverlap_before(self, kw):
        """The object-wise non-overlap of ``_postprocess_output`` (each pixel claimed by several returned objects
        goes to the one with the highest tracker score): the smallest score gap it decided on, and the pixels
        claimed by two objects whose scores are within ``NEAR_TIE`` (objects tracked from the same frame get nearly
        equal scores from these random weights, so a port may break such a tie the other way)."""
        m, p = kw["pred_masks"][:, 0] > 0, kw["obj_scores"].flatten()
        gaps, ties = [], torch.zeros(m.shape[-2:], dtype=torch.bool)
        for i in range(len(p)):
            for j in range(i + 1, len(p)):
                both = m[i] & m[j]
                if bool(both.any()):
                    gap = abs(float(p[i]) - float(p[j]))
                    gaps.append(gap)
                    if gap < NEAR_TIE:
                        ties |= both
        self._nonoverlap_gap = min(gaps) if gaps else None
        self._tie_pixels = ties

    def _memory_dtype_shim(self, orig):
        """CPU shim: a frame whose memory has no object pointer (tracking towards the only conditioning frame, e.g.
        the frames before a refinement click in a partial propagation) hands the memory attention its bfloat16
        memories alone (with pointers, the concatenation promotes them to float32), which fails in float32 on a CPU
        (under the CUDA autocast of the official code it runs in bfloat16). The memory is promoted to float32, as the
        concatenation with pointers does; ``memory_without_pointers`` counts it per frame."""
        def forward(*args, **kwargs):
            if kwargs.get("prompt") is not None and kwargs["prompt"].dtype == torch.bfloat16:
                kwargs["prompt"] = kwargs["prompt"].float()
                self.memory_without_pointers += 1
            return orig(*args, **kwargs)
        return forward

    @contextmanager
    def hooks(self):
        vm, t = self.vm, self.trk
        with ExitStack() as es:
            es.enter_context(_wrap(vm.detector, "_build_multigpu_buffer_next_chunk", self._build_before,
                                   self._build_after))
            orig_nms = official_image.nms_masks
            official_image.nms_masks = self._nms_wrapper(orig_nms)
            es.callback(setattr, official_image, "nms_masks", orig_nms)
            es.enter_context(_wrap(vm, "_det_track_one_frame", self._frame_before, self._frame_after))
            es.enter_context(_wrap(vm, "run_backbone_and_detection", None, self._detection_after))
            es.enter_context(_wrap(vm, "run_tracker_propagation", None, self._propagation_after))
            es.enter_context(_wrap(vm, "_associate_det_trk", None, self._associate_after))
            es.enter_context(_wrap(vm, "_process_hotstart", None, self._hotstart_after))
            es.enter_context(_wrap(vm, "_recondition_masklets", self._recondition_before, self._recondition_after))
            es.enter_context(_wrap(vm, "_get_objects_to_suppress_based_on_most_recently_occluded", None,
                                   self._suppress_after))
            es.enter_context(_wrap(vm, "_tracker_add_new_objects", self._add_objects_before, self._add_objects_after))
            es.enter_context(_wrap(vm, "_tracker_remove_objects", self._remove_objects_before))
            es.enter_context(_wrap(vm, "build_outputs", None, self._build_outputs_after))
            es.enter_context(_wrap(vm, "_propogate_tracker_one_frame_local_gpu", None, self._partial_after))
            es.enter_context(_wrap(t, "add_new_mask", self._add_new_mask_before))
            es.enter_context(_wrap(t, "_suppress_shrinked_masks", self._shrink_before))
            es.enter_context(_wrap(t, "add_new_points", None, self._add_points_after))
            es.enter_context(_wrap(t, "_apply_object_wise_non_overlapping_constraints", self._nonoverlap_before))
            enc = t.transformer.encoder
            enc.forward = self._memory_dtype_shim(enc.forward)
            es.callback(delattr, enc, "forward")
            yield self

    def take(self):
        out = dict(detector_runs=self.detector_runs, processed=self.frame_logs, partial=self.partial_logs,
                   memory_without_pointers=self.memory_without_pointers)
        self.detector_runs, self.frame_logs, self.partial_logs = [], [], []
        self.memory_without_pointers = 0
        return out

    def pending(self):
        return len(self.frame_logs) + len(self.partial_logs)

    def output_record(self, frame, outputs):
        """What the official predictor returned for one frame (``_postprocess_output``), masks packed, with the
        pixels of the returned masks that are uncertain (see ``UNCERTAIN_LOGIT``), whether each box is the box of
        the returned mask (the official boxes are taken before the object-wise non-overlap) and the smallest score
        gap the non-overlap decided on."""
        state = self.state
        r0 = state["tracker_metadata"].get("rank0_metadata", {})
        H, W = state["orig_height"], state["orig_width"]
        masks = torch.from_numpy(np.asarray(outputs["out_binary_masks"])).bool().reshape(-1, H, W)
        ids = _ints(outputs["out_obj_ids"])
        boxes = torch.from_numpy(np.asarray(outputs["out_boxes_xywh"], dtype=np.float32)).reshape(-1, 4)
        unc = torch.zeros(H, W, dtype=torch.bool)
        for oid in ids:
            unc |= self.uncertain[(int(frame), oid)]
        ties = self._tie_pixels if len(ids) > 1 else torch.zeros(H, W, dtype=torch.bool)
        unc |= ties
        box_of_mask = []
        for i in range(len(ids)):
            ys, xs = torch.nonzero(masks[i], as_tuple=True)
            if len(xs) == 0:
                box_of_mask.append(False)
                continue
            b = torch.tensor([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()], dtype=torch.float32)
            box_of_mask.append(bool(torch.allclose(b / torch.tensor([W, H, W, H]), boxes[i], atol=1e-6)))
        gap = self._nonoverlap_gap if len(ids) > 1 else None
        self._nonoverlap_gap, self._tie_pixels = None, None
        return dict(frame=int(frame), out_obj_ids=ids,
                    out_probs=tensor_copy(np.asarray(outputs["out_probs"], dtype=np.float32)).reshape(-1),
                    out_boxes_xywh=tensor_copy(boxes), out_binary_masks_packed=pack_masks(masks),
                    uncertain_pixels_packed=pack_masks(unc[None])[0], box_is_box_of_returned_mask=box_of_mask,
                    nonoverlap_min_score_gap=gap, near_tie_pixels=int(ties.sum()),
                    removed_obj_ids_now=sorted(int(i) for i in r0.get("removed_obj_ids", set())),
                    suppressed_obj_ids_of_frame=sorted(int(i) for i in
                                                       r0.get("suppressed_obj_ids", {}).get(frame, set())))



def add_concept_step(vm, state, rec, frame, text=None, boxes_xyxy=None, box_labels=None):
    """``add_prompt(frame_idx, text_str, boxes_xywh, box_labels)`` as the official predictor's add_prompt request
    makes it (boxes normalised xywh). ``boxes_xyxy`` are pixel (x1, y1, x2, y2) of the frame."""
    W, H = state["orig_width"], state["orig_height"]
    step = dict(op="add_concept", frame=int(frame), text=text)
    kw = dict(inference_state=state, frame_idx=frame, text_str=text)
    if boxes_xyxy is not None:
        b = torch.tensor(boxes_xyxy, dtype=torch.float32).reshape(-1, 4)
        xywh = torch.stack([b[:, 0] / W, b[:, 1] / H, (b[:, 2] - b[:, 0]) / W, (b[:, 3] - b[:, 1]) / H], dim=1)
        step.update(boxes_xyxy=b, box_labels=torch.tensor(box_labels, dtype=torch.int64),
                    boxes_xywh_normalised=xywh)
        kw.update(boxes_xywh=xywh.tolist(), box_labels=list(box_labels))
    step["official_call"] = "add_prompt(state, frame_idx=%d, text_str=%r%s)" % (
        frame, text, (", boxes_xywh=<normalised xywh>, box_labels=%s" % list(box_labels))
        if boxes_xyxy is not None else "")
    fi, outputs = vm.add_prompt(**kw)
    assert fi == frame
    step["result"] = rec.output_record(fi, outputs)
    step["log"] = rec.take()
    return step


def add_click_step(vm, state, rec, frame, obj_id, points, labels):
    """``add_prompt(frame_idx, points, point_labels, obj_id)`` (the instance-interactivity path), points as the
    official predictor takes them: normalised (x, y) of the frame. ``points`` are pixels."""
    W, H = state["orig_width"], state["orig_height"]
    p = torch.tensor(points, dtype=torch.float32).reshape(-1, 2)
    rel = torch.stack([p[:, 0] / W, p[:, 1] / H], dim=1)
    step = dict(op="add_click", frame=int(frame), obj_id=int(obj_id), points=p,
                labels=torch.tensor(labels, dtype=torch.int32), points_normalised=rel,
                official_call="add_prompt(state, frame_idx=%d, points=<normalised xy>, point_labels=%s, obj_id=%d)  "
                              "# rel_coordinates=True (default)" % (frame, list(labels), obj_id))
    fi, outputs = vm.add_prompt(inference_state=state, frame_idx=frame, points=rel,
                                point_labels=torch.tensor(labels, dtype=torch.int32), obj_id=obj_id)
    assert fi == frame
    step["action_history"] = [dict(type=a["type"], frame_idx=a["frame_idx"],
                                   obj_ids=None if a["obj_ids"] is None else _ints(a["obj_ids"]))
                              for a in state["action_history"]]
    step["result"] = rec.output_record(fi, outputs)
    step["log"] = rec.take()
    return step


def propagate_step(vm, state, rec, direction="forward", start=None, max_frames=None):
    """``propagate_in_video`` once (forward or backward) or twice (``both``: forward then backward from the same
    start), as the official ``Sam3VideoPredictor.propagate_in_video`` does."""
    assert direction in ("forward", "backward", "both")
    reverses = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
    step = dict(op="propagate", direction=direction, start=start, max_frames=max_frames, official_calls=[],
                passes=[])
    for rev in reverses:
        step["official_calls"].append("propagate_in_video(state, start_frame_idx=%s, max_frame_num_to_track=%s, "
                                      "reverse=%s)" % (start, max_frames, rev))
        n_before = len(state["action_history"])
        yields = []
        for fi, outputs in vm.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=max_frames,
                                                 reverse=rev):
            y = rec.output_record(fi, outputs)
            # how many frames this pass had processed when it yielded this one (the hot-start delay holds yields
            # back until `hotstart_delay` frames are buffered; the end of the pass flushes the rest)
            y["processed_count"] = rec.pending()
            yields.append(y)
        kind = state["action_history"][n_before]["type"]
        step["passes"].append(dict(reverse=rev, propagation_type=kind, yields=yields, log=rec.take()))
    return step
