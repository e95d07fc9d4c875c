"""Driving the official ``Sam3TrackerPredictor`` through a case and recording what it does.

A case is a list of steps on one fresh inference state: ``add_points`` (``add_new_points_or_box``), ``add_mask``
(``add_new_mask``) and ``propagate`` (``propagate_in_video`` once, or twice for ``both``: forward then backward from
the same start, as the official ``Sam3VideoPredictor.propagate_in_video`` does). Each step keeps the inputs, the
official outputs, the state's stored outputs for the frames it touched (object pointers, scores, memories), and a log
of the official control flow during the step (which frames ran ``track_step``, when the memory encoder ran and on
what, which frames and pointers the memory attention read), recorded by wrappers that do not touch the numerics.
Everything recorded is a plain tensor, list, int, float, bool or str.
"""
from __future__ import annotations

import inspect
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F

from sam3.model.sam3_tracker_utils import select_closest_cond_frames

from .recording import tensor_copy


@contextmanager
def _wrap(obj, name, before=None, after=None):
    """Replace ``obj.name`` by a wrapper calling ``before(kw)`` and ``after(kw, out, token)`` around the original,
    where ``kw`` are the call's arguments by name (defaults filled in) and ``token`` what ``before`` returned."""
    orig = getattr(obj, name)
    sig = inspect.signature(orig)

    def wrapper(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:  # let the official call raise its own error
            return orig(*args, **kwargs)
        bound.apply_defaults()
        kw = dict(bound.arguments)
        token = before(kw) if before else None
        out = orig(*args, **kwargs)
        if after:
            after(kw, out, token)
        return out

    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        delattr(obj, name)


def memory_plan(trk, frame_idx, output_dict, num_frames, reverse):
    """Which stored outputs the official ``_prepare_memory_conditioned_features`` reads for ``frame_idx`` (eval, no
    memory stride): the same selection, computed with the official helpers before the official call (both are pure
    functions of ``output_dict``). Spatial memories: [frame, index into maskmem_tpos_enc, is a selected conditioning
    frame]; pointers: [frame, temporal position passed to the sine encoding, is a selected conditioning frame]."""
    assert trk.memory_temporal_stride_for_eval == 1 and not trk.training
    cond = output_dict["cond_frame_outputs"]
    non_cond = output_dict["non_cond_frame_outputs"]
    selected, unselected = select_closest_cond_frames(frame_idx, cond, trk.max_cond_frames_in_attn,
                                                      keep_first_cond_frame=trk.keep_first_cond_frame)
    sign = -1 if reverse else 1
    spatial = [[int(t), trk.num_maskmem - 1, True] for t in selected]
    valid = trk.frame_filter(output_dict, reverse, frame_idx, num_frames, 1) if trk.use_memory_selection else None
    for t_pos in range(1, trk.num_maskmem):
        t_rel = trk.num_maskmem - t_pos
        if valid is not None:
            if t_rel > len(valid):
                continue
            prev = valid[-t_rel]
        else:
            prev = frame_idx + t_rel if reverse else frame_idx - t_rel
        out = non_cond.get(prev, unselected.get(prev))
        if out is not None:
            spatial.append([int(prev), trk.num_maskmem - t_pos - 1, False])
    max_ptrs = min(num_frames, trk.max_obj_ptrs_in_encoder)
    pointers = [[int(t), int((frame_idx - t) * sign), True] for t in selected
                if (t >= frame_idx if reverse else t <= frame_idx)]
    for t_diff in range(1, max_ptrs):
        if valid is None:
            t = frame_idx + t_diff if reverse else frame_idx - t_diff
            if t < 0 or t >= num_frames:
                break
        else:
            if -t_diff <= -len(valid):
                break
            t = valid[-t_diff]
        if non_cond.get(t, unselected.get(t)) is not None:
            pointers.append([int(t), t_diff, False])
    return dict(selected_cond_frames=[int(t) for t in selected],
                unselected_cond_frames=[int(t) for t in unselected],
                valid_frames=None if valid is None else [int(t) for t in valid],
                spatial=spatial, pointers=pointers)


class CaseRecorder:
    """Wrappers on one tracker for one case; ``events`` collects the control-flow log of the current step."""

    def __init__(self, trk, state):
        self.trk, self.state = trk, state
        self.events = []
        self._encoder_calls = []
        self._mem_caller = []
        self._mem_frame = None
        self.grid = trk.sam_image_embedding_size
        d, m = trk.hidden_dim, trk.mem_dim
        self.tokens_per_ptr = d // m if m < d else 1

    # ---------------------------------------------------------------- helpers
    def _dict_name(self, od):
        if od is self.state["output_dict"]:
            return "combined"
        for idx, d in self.state["output_dict_per_obj"].items():
            if od is d:
                return f"object_index_{idx}"
        return "scratch"

    # ---------------------------------------------------------------- hooks
    def _track_step_before(self, kw):
        pi, mi = kw.get("point_inputs"), kw.get("mask_inputs")
        ev = dict(event="track_step", frame=int(kw["frame_idx"]), init_cond_frame=bool(kw["is_init_cond_frame"]),
                  reverse=bool(kw.get("track_in_reverse", False)), dict=self._dict_name(kw["output_dict"]),
                  batch=int(kw["current_vision_feats"][-1].shape[1]),
                  num_points=-1 if pi is None else int(pi["point_labels"].shape[1]),
                  mask_input=mi is not None, prev_mask_logits=kw.get("prev_sam_mask_logits") is not None,
                  use_prev_mem_frame=bool(kw.get("use_prev_mem_frame", True)),
                  run_mem_encoder=bool(kw.get("run_mem_encoder", True)))
        ev["path"] = "mask_as_output" if mi is not None else "sam_heads"
        if mi is None:
            ev["multimask_output"] = bool(self.trk._use_multimask(kw["is_init_cond_frame"], pi))
        self.events.append(ev)
        return ev

    def _track_step_after(self, kw, out, ev):
        ev["object_score_logits"] = out["object_score_logits"].flatten().tolist()
        if "iou_score" in out:
            ev["iou_score"] = out["iou_score"].flatten().tolist()
            ev["eff_iou_score"] = float(out["eff_iou_score"])

    def _pmcf_before(self, kw):
        self._encoder_calls.clear()
        if kw["is_init_cond_frame"] or not kw.get("use_prev_mem_frame", True):
            return dict(event="memory_attention", frame=int(kw["frame_idx"]), used=False,
                        why="initial conditioning frame" if kw["is_init_cond_frame"] else "use_prev_mem_frame=False",
                        dict=self._dict_name(kw["output_dict"]))
        plan = memory_plan(self.trk, kw["frame_idx"], kw["output_dict"], kw["num_frames"],
                           kw.get("track_in_reverse", False))
        return dict(event="memory_attention", frame=int(kw["frame_idx"]), used=True,
                    reverse=bool(kw.get("track_in_reverse", False)), dict=self._dict_name(kw["output_dict"]), **plan)

    def _pmcf_after(self, kw, out, ev):
        if ev["used"]:
            (n_tokens, n_ptr_tokens, dtype), = self._encoder_calls
            ev.update(num_memory_tokens=n_tokens, num_pointer_tokens=n_ptr_tokens, memory_dtype_after_cat=dtype)
            g2 = self.grid * self.grid
            assert n_ptr_tokens == len(ev["pointers"]) * self.tokens_per_ptr, ev
            assert n_tokens == len(ev["spatial"]) * g2 + n_ptr_tokens, ev
        else:
            assert not self._encoder_calls
        self.events.append(ev)

    def _encoder_before(self, kw):
        p = kw["prompt"]
        self._encoder_calls.append((int(p.shape[0]), int(kw["num_obj_ptr_tokens"]), str(p.dtype).replace("torch.", "")))

    def _encode_mem_before(self, kw):
        m = kw["pred_masks_high_res"]
        s = kw["object_score_logits"]
        caller = self._mem_caller[-1] if self._mem_caller else "track_step"
        self.events.append(dict(event="memory_encoder", caller=caller,
                                frame=self._mem_frame, batch=int(m.shape[0]), mask_size=list(m.shape[-2:]),
                                is_mask_from_pts=bool(kw["is_mask_from_pts"]),
                                object_present=(s > 0).flatten().tolist()))

    def _run_mem_before(self, kw):
        self._mem_caller.append("consolidation")
        self._mem_frame = int(kw["frame_idx"])

    def _run_mem_after(self, kw, out, tok):
        self._mem_caller.pop()

    def _track_step_frame(self, kw):
        self._mem_frame = int(kw["frame_idx"])
        return self._track_step_before(kw)

    def _non_overlap_after(self, kw, out, tok):
        m = kw["pred_masks"]
        if m.shape[0] > 1:
            self.events.append(dict(event="non_overlap", batch=int(m.shape[0]), mask_size=list(m.shape[-2:]),
                                    overlap_pixels=int(((m > 0).sum(0) > 1).sum()),
                                    changed_pixels=int((out != m).any(0).sum())))

    def _empty_ptr_before(self, kw):
        self.events.append(dict(event="empty_mask_pointer", frame=int(kw["frame_idx"])))

    def _clear_before(self, kw):
        self.events.append(dict(event="clear_non_cond_memory_around", frame=int(kw["frame_idx"]),
                                frames=[kw["frame_idx"] - self.trk.num_maskmem, kw["frame_idx"] + self.trk.num_maskmem],
                                dicts="per-object only"))

    def _preflight_before(self, kw):
        st = kw["inference_state"]
        temp = {k: sorted({f for d in st["temp_output_dict_per_obj"].values() for f in d[k]})
                for k in ("cond_frame_outputs", "non_cond_frame_outputs")}
        self.events.append(dict(event="preflight", consolidate_cond_frames=temp["cond_frame_outputs"],
                                consolidate_non_cond_frames=temp["non_cond_frame_outputs"]))

    @contextmanager
    def hooks(self):
        t = self.trk
        with ExitStack() as es:
            es.enter_context(_wrap(t, "track_step", self._track_step_frame, self._track_step_after))
            es.enter_context(_wrap(t, "_prepare_memory_conditioned_features", self._pmcf_before, self._pmcf_after))
            es.enter_context(_wrap(t.transformer.encoder, "forward", self._encoder_before))
            es.enter_context(_wrap(t, "_encode_new_memory", self._encode_mem_before))
            es.enter_context(_wrap(t, "_run_memory_encoder", self._run_mem_before, self._run_mem_after))
            es.enter_context(_wrap(t, "_get_empty_mask_ptr", self._empty_ptr_before))
            es.enter_context(_wrap(t, "_clear_non_cond_mem_around_input", self._clear_before))
            es.enter_context(_wrap(t, "propagate_in_video_preflight", self._preflight_before))
            orig_no = t._apply_non_overlapping_constraints

            def non_overlap(pred_masks):
                out = orig_no(pred_masks)
                self._non_overlap_after(dict(pred_masks=pred_masks), out, None)
                return out

            t._apply_non_overlapping_constraints = non_overlap
            es.callback(delattr, t, "_apply_non_overlapping_constraints")
            yield self

    def take_events(self):
        ev, self.events = self.events, []
        return ev


# -------------------------------------------------------------------- stored outputs
def pack_masks(m):
    """(..., S, S) bool -> (..., S*S/8) uint8: the row-major pixels in groups of 8, first pixel in the most significant
    bit (numpy.packbits order)."""
    flat = m.reshape(*m.shape[:-2], -1).to(torch.uint8)
    assert flat.shape[-1] % 8 == 0
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)
    return (flat.reshape(*flat.shape[:-1], -1, 8) * weights).sum(-1, dtype=torch.uint8).contiguous()


def unpack_masks(p, size):
    bits = (p[..., None] >> torch.arange(7, -1, -1, dtype=torch.uint8)) & 1
    return bits.reshape(*p.shape[:-1], size, size).bool()


def _stored_entry(state, frame):
    od = state["output_dict"]
    if frame in od["cond_frame_outputs"]:
        return "cond", od["cond_frame_outputs"][frame]
    return "non_cond", od["non_cond_frame_outputs"][frame]


def record_frame_output(state, frame, keep_memory):
    """What the state holds for ``frame`` after it was yielded (the memory the later frames will read)."""
    storage, out = _stored_entry(state, frame)
    mf = out["maskmem_features"]
    rec = dict(storage=storage, obj_ptr=tensor_copy(out["obj_ptr"]),
               stored_object_score_logits=tensor_copy(out["object_score_logits"]),
               maskmem_shape=list(mf.shape), maskmem_dtype=str(mf.dtype).replace("torch.", ""))
    if "iou_score" in out:
        rec["iou_score"] = tensor_copy(out["iou_score"])
    if "eff_iou_score" in out:
        rec["eff_iou_score"] = float(out["eff_iou_score"])
    if keep_memory:
        rec["maskmem_features"] = tensor_copy(mf)
    return rec


def add_step(trk, state, rec, kind, frame, obj_id, points=None, labels=None, box=None, mask=None,
             clear_old_points=True):
    """One add call; returns the step record."""
    S = state["video_height"]
    step = dict(op=kind, frame=int(frame), obj_id=int(obj_id))
    if kind == "add_points":
        step["clear_old_points"] = bool(clear_old_points)
        step["use_prev_mem_frame"] = False
        kw = dict(inference_state=state, frame_idx=frame, obj_id=obj_id, clear_old_points=clear_old_points,
                  rel_coordinates=False)
        if points is not None:
            step["points"] = torch.tensor(points, dtype=torch.float32).reshape(-1, 2)
            step["labels"] = torch.tensor(labels, dtype=torch.int32).reshape(-1)
            kw.update(points=step["points"].clone(), labels=step["labels"].clone())
        if box is not None:
            step["box"] = torch.tensor(box, dtype=torch.float32).reshape(4)
            kw.update(box=step["box"].clone())
        step["official_call"] = (
            "add_new_points_or_box(state, frame_idx=%d, obj_id=%d, points=%s, labels=%s, box=%s, clear_old_points=%s, "
            "rel_coordinates=False)  # use_prev_mem_frame=False (default), normalize_coords unused"
            % (frame, obj_id, "points" if points is not None else None, "labels" if points is not None else None,
               "box" if box is not None else None, clear_old_points))
        tracked_before = frame in state["frames_already_tracked"]
        fi, obj_ids, low, video_res = trk.add_new_points_or_box(**kw)
    else:
        step["mask"] = mask.clone().to(torch.bool)
        step["official_call"] = ("add_new_mask(state, frame_idx=%d, obj_id=%d, mask=mask)  # (S, S) bool tensor"
                                 % (frame, obj_id))
        tracked_before = frame in state["frames_already_tracked"]
        fi, obj_ids, low, video_res = trk.add_new_mask(inference_state=state, frame_idx=frame, obj_id=obj_id,
                                                         mask=step["mask"].clone())
    assert fi == frame and low is None
    step["frame_was_tracked_before"] = bool(tracked_before)
    step["events"] = rec.take_events()
    step["returned_frame"] = int(fi)
    step["returned_obj_ids"] = [int(o) for o in obj_ids]
    step["returned_low_res_masks"] = "None"
    # the added object's fresh output (temp storage; always under cond_frame_outputs since every frame receiving
    # clicks or a mask becomes a conditioning frame)
    idx = state["obj_id_to_idx"][obj_id]
    out = state["temp_output_dict_per_obj"][idx]["cond_frame_outputs"][frame]
    step["object_score_logits"] = tensor_copy(out["object_score_logits"])
    step["obj_ptr"] = tensor_copy(out["obj_ptr"])
    if "iou_score" in out:
        step["iou_score"] = tensor_copy(out["iou_score"])
    if kind == "add_points":
        step["low_res_logits"] = tensor_copy(out["pred_masks"])
        pi = state["point_inputs_per_obj"][idx][frame]
        step["prompt_point_coords"] = tensor_copy(pi["point_coords"][0])
        step["prompt_point_labels"] = tensor_copy(pi["point_labels"][0])
    # the returned video-resolution logits, per object: exactly reproducible from what is stored (checked here)
    objects = []
    for i, oid in enumerate(obj_ids):
        o = dict(obj_id=int(oid))
        t_out = state["temp_output_dict_per_obj"][i]["cond_frame_outputs"].get(frame)
        po = state["output_dict_per_obj"][i]
        p_out = po["cond_frame_outputs"].get(frame, po["non_cond_frame_outputs"].get(frame))
        if t_out is not None and "pred_masks_video_res" in t_out:
            o["source"] = "mask"
            expect = t_out["pred_masks_video_res"]
            # add_new_mask writes +-1024 (NO_OBJ_SCORE) at video resolution; a later mask of another object on the
            # same frame overwrites its pixels with -1024
            o["video_res_logits_values"] = sorted({float(v) for v in expect.unique()})
        elif t_out is not None:
            o["source"] = "pending_prompt_output"
            o["low_res_logits"] = tensor_copy(t_out["pred_masks"][0])
            expect = F.interpolate(t_out["pred_masks"], size=(S, S), mode="bilinear", align_corners=False)
        elif p_out is not None:
            o["source"] = "stored_output"
            o["low_res_logits"] = tensor_copy(p_out["pred_masks"][0])
            expect = F.interpolate(p_out["pred_masks"], size=(S, S), mode="bilinear", align_corners=False)
        else:
            o["source"] = "none"
            expect = torch.full((1, 1, S, S), -1024.0)
        assert torch.equal(expect.float(), video_res[i:i + 1].float()), (oid, o["source"])
        objects.append(o)
    step["objects"] = objects
    step["video_res_masks_packed"] = pack_masks(video_res[:, 0] > 0)
    return step


def propagate_step(trk, state, rec, start=None, direction="forward", max_frames=None, keep_memory=True):
    assert direction in ("forward", "backward", "both")
    S = state["video_height"]
    reverses = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
    step = dict(op="propagate", start=start, direction=direction, max_frames=max_frames, official_calls=[],
                yields=[])
    for p, rev in enumerate(reverses):
        step["official_calls"].append(
            "propagate_in_video(state, start_frame_idx=%s, max_frame_num_to_track=%s, reverse=%s, tqdm_disable=True, "
            "propagate_preflight=True)" % (start, max_frames, rev))
        consolidated = {k: set(v) for k, v in state["consolidated_frame_inds"].items()}
        gen = trk.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=max_frames, reverse=rev,
                                     tqdm_disable=True, propagate_preflight=True)
        first = True
        while True:
            try:
                fi, obj_ids, low, video_res, scores = next(gen)
            except StopIteration:
                break
            if first:  # the preflight ran inside the first next(): consolidated frames are known now
                consolidated = {k: set(v) for k, v in state["consolidated_frame_inds"].items()}
                first = False
            expect = F.interpolate(low, size=(S, S), mode="bilinear", align_corners=False)
            assert torch.equal(expect, video_res)
            y = dict(frame=int(fi), pass_index=p, reverse=rev, obj_ids=[int(o) for o in obj_ids],
                     source="consolidated_prompt_frame" if fi in consolidated["cond_frame_outputs"]
                     else ("consolidated_non_cond" if fi in consolidated["non_cond_frame_outputs"] else "tracked"),
                     low_res_logits=tensor_copy(low), object_score_logits=tensor_copy(scores),
                     video_res_masks_packed=pack_masks(video_res[:, 0] > 0))
            y.update(record_frame_output(state, fi, keep_memory))
            y["events"] = rec.take_events()
            step["yields"].append(y)
    return step
