"""``ConceptTracker``: the per-frame detect-and-track algorithm of the official ``Sam3VideoBase``
(``_det_track_one_frame``) for every concept of a session, on the session's ``TrackGroup``s.

One frame t of one concept (official step numbers in brackets):
    1. the detector's kept detections of t (``detect``; the session encodes the frame once for both necks);
    2. every tracker state (group) of the concept propagates to t without encoding memory; hole filling [2];
    3. association of detections and tracks [3]; the limit on the number of objects; ids for the new detections;
    4. hot-start bookkeeping and removals [4];
    5. on every ``recondition_every_nth_frame``-th frame, re-conditioning of the tracks matched by a
       high-confidence detection [5];
    6. suppression of overlapping tracks by recent occlusion [6];
    7. the memory of t for every track, after suppressing the tracks the pixel-wise non-overlap shrinks [7];
    8. the new detections become one new group (bucket), the removed tracks leave theirs [8];
    9. the frame's outputs: the tracks' (hole-filled, suppressed) logits, the new detections' logits [9].
The post-processing of the outputs and the hot-start delay [10, 11] are the session's (``outputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ....model.features import DetectorImageFeatures, TrackerImageFeatures
from ....model.sam3 import Sam3Model
from ...text import TextFeatureCache
from ..group import FallbackFn, TrackGroup
from ..postprocess import fill_holes
from .associate import associate
from .concept import Concept, ConceptPrompt
from .confirmation import update_confirmation
from .detections import Detections, close_to_boundary, select_detections
from .hotstart import process_hotstart
from .occlusion import suppress_by_recent_occlusion
from .options import ConceptTrackOptions
from .overlap import suppress_shrunk

VISUAL_TEXT = "visual"
"""The text the official detector reads for a concept given by exemplar boxes only."""
RECONDITION_MIN_LOGIT = 0.8
"""A track is re-conditioned only if its object-score logit on the frame exceeds this (official constant)."""
PRESENT_LOGIT = 10.0
"""Object-score logit the memory update gives a non-empty track (-10 for an empty one), as officially."""
REMOVED_SCORE = -1e4
"""The score the official code gives a removed object (it is hidden anyway)."""


@dataclass
class ConceptStep:
    """One concept's outputs on one frame, before post-processing.

    obj_ids: the N objects with an output: the tracks propagated to the frame (removed ones included: the buffer
        hides them), then the new objects.
    low_res: (N, 4g, 4g) float32 output logits (bilinear to the frame's size, then > 0).
    object_scores: (N,) tracker object-score logits (+10 for a new object); ious: (N,) predicted IoUs (1 for new).
    priority: (N,) the official tracker score of each object on this frame (non-overlap priority).
    new_ids: the objects born on this frame; removed: the objects the hot start removed on this frame.
    suppressed: objects hidden on this frame only; unconfirmed: objects not confirmed after this frame (None when
        confirmation is off).
    """

    obj_ids: list[int]
    low_res: Tensor
    object_scores: list[float]
    ious: list[float]
    priority: list[float]
    new_ids: list[int] = field(default_factory=list)
    removed: set[int] = field(default_factory=set)
    suppressed: set[int] = field(default_factory=set)
    unconfirmed: Optional[set[int]] = None


class ConceptTracker:
    """The concepts of one session and the detect-and-track algorithm that steps them.

    Args:
        model: the SAM 3 model (detector and tracker).
        texts: the session's text-feature cache.
        make_group: a new empty ``TrackGroup`` (the session's memory policy and options).
        options: the heuristics.
        frame_size: (H, W) of the video.
    """

    def __init__(self, model: Sam3Model, texts: TextFeatureCache, make_group: Callable[[], TrackGroup],
                 options: ConceptTrackOptions, frame_size: tuple[int, int]) -> None:
        self.model = model
        self.texts = texts
        self.make_group = make_group
        self.options = options
        self.frame_size = tuple(frame_size)
        cfg = model.tracker_model.config
        self.model_mask_size = cfg.grid_size * cfg.mask_downsampler_total_stride  # 16g (1152 at release)
        self.low_res_size = model.tracker_model.prompt_encoder.mask_input_size  # 4g
        self.concepts: list[Concept] = []
        self.removed: dict[int, str] = {}  # object id -> why it is gone

    # ------------------------------------------------------------------ concepts and objects
    def add(self, prompt: ConceptPrompt, *, truncate_text: bool = False) -> Concept:
        """A new concept (its text encoded now; an overlong text raises ``InputError``)."""
        text = prompt.text if prompt.text is not None else VISUAL_TEXT
        c = Concept(index=len(self.concepts), prompt=prompt,
                    text_features=self.texts.get(text, truncate=truncate_text))
        self.concepts.append(c)
        return c

    def owner(self, obj_id: int) -> Optional[Concept]:
        for c in self.concepts:
            if c.group_of(obj_id) is not None:
                return c
        return None

    @property
    def object_ids(self) -> list[int]:
        return [oid for c in self.concepts for oid in c.object_ids]

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.concepts)

    def make_concept_group(self) -> TrackGroup:
        g = self.make_group()
        g.restart_at_prompts = False
        return g

    def trim(self, concept: Concept, num_frames: Optional[int]) -> None:
        """Let the concept's groups drop what no later pass reads (bounded memory): the next frame of the running
        passes, and while the concept's backward detect-and-track pass is still to come, what it reads first (the
        memories after each group's first conditioning frame). Later passes of a concept are tracker-only passes
        after refinement clicks, which recompute every frame they read except the conditioning frames (kept)."""
        for g in concept.groups:
            extra = ()
            if concept.full_pending[True] and g.conditioning_frames:
                extra = ((min(g.conditioning_frames) - 1, True),)
            g.trim(extra, num_frames)

    def remove(self, obj_id: int, why: str) -> None:
        """Remove an object from its concept for good (its id is never used again)."""
        c = self.owner(obj_id)
        if c is not None:
            g = c.group_of(obj_id)
            if not g.remove_row(g.row(obj_id)):
                c.groups.remove(g)
            c.book.removed.add(obj_id)
            c.last_occluded.pop(obj_id, None)
            c.confirmation.pop(obj_id, None)
            for s in c.refined.values():
                s.discard(obj_id)
        self.removed[obj_id] = why

    # ------------------------------------------------------------------ the algorithm
    @torch.inference_mode()
    def detect(self, concept: Concept, frame: int, image: Optional[DetectorImageFeatures]) -> Detections:
        """The concept's kept detections on ``frame`` (nothing where it may not detect: ``image`` may then be
        None). The exemplars prompt their frame and the first detection of the next one (``Concept.exemplars_ahead``,
        the official single-GPU behaviour)."""
        o = self.options
        if not concept.prompt.detects_on(frame) or image is None:
            return Detections.empty(self.low_res_size, self.model.device)
        p = concept.prompt
        boxes = labels = None
        if p.exemplars_on(frame) or frame == concept.exemplars_ahead:
            boxes, labels = p.boxes.to(self.model.device, self.model.dtype), p.box_labels.to(self.model.device)
        if frame == concept.exemplars_ahead:
            concept.exemplars_ahead = None
        out = self.model.detect(image, concept.text_features, boxes, labels, None, masks=True, semantic=False)
        return select_detections(out.logits[0], out.presence_logit[0], out.boxes[0], out.mask_logits[0],
                                 score_threshold=o.score_threshold_detection, nms_threshold=o.det_nms_thresh)

    @torch.inference_mode()
    def step(self, concept: Concept, frame: int, reverse: bool, dets: Detections, features: TrackerImageFeatures, *,
             num_frames: Optional[int], features_of: Callable[[int], TrackerImageFeatures],
             fallback: Optional[FallbackFn], new_ids: Callable[[int], list[int]]) -> ConceptStep:
        """One frame of the detect-and-track algorithm for one concept (module docstring).

        Args:
            dets: the frame's detections for this concept (``detect``).
            features: the frame's tracker features; features_of: features of any frame (consolidation).
            fallback: the session's stored results of frames the bank dropped.
            new_ids: n -> n fresh object ids.
        """
        o = self.options
        nxt = frame - 1 if reverse else frame + 1
        ids: list[int] = []
        lows, scores, ious = [], [], []
        for g in concept.groups:
            g.frontier[reverse] = nxt  # before anything trims the bank: frame t is read by nothing next
            low, obj = g.propagate(frame, reverse, features, num_frames)
            mem = g.bank.get(frame)
            ids += g.object_ids
            lows.append(low[:, 0].float())
            scores.append(obj[:, 0].float())
            ious.append(mem.iou.reshape(len(g), -1)[:, 0].float())
        lr, dev = self.low_res_size, features.embed.device
        if ids:
            trk = fill_holes(torch.cat(lows)[:, None], o.fill_hole_area)[:, 0]
            trk_score = torch.cat(scores)
            trk_iou = torch.cat(ious)
        else:
            trk, trk_score, trk_iou = torch.zeros(0, lr, lr, device=dev), torch.zeros(0, device=dev), torch.zeros(0)
        ids_np = np.asarray(ids, dtype=np.int64)
        det_scores = dets.scores.float().cpu().numpy()

        assoc = associate(dets.masks, det_scores, trk, ids_np, assoc_iou_thresh=o.assoc_iou_thresh,
                          trk_assoc_iou_thresh=o.trk_assoc_iou_thresh, new_det_thresh=o.new_det_thresh)
        new = assoc.new
        if o.suppress_det_close_to_boundary and len(new):
            new = new[~close_to_boundary(dets.boxes[torch.from_numpy(new)])]
        tracked = sum(len(c.object_ids) for c in self.concepts)
        if tracked + len(new) > o.object_limit:
            keep = max(o.object_limit - tracked, 0)
            new = new[np.argsort(det_scores[new])[::-1][:keep]] if keep else new[:0]
        born = np.asarray(new_ids(len(new)), dtype=np.int64)

        removed = process_hotstart(concept.book, frame, reverse, assoc, born, o)

        override: dict[int, Tensor] = {}
        if o.reconstruction_bbox_iou_thresh > 0 and assoc.high_conf:
            for trk_id, d in assoc.high_conf.items():
                k = ids.index(trk_id)
                binary = trk[k] > 0
                if not bool(binary.any()):
                    continue
                if (_box_iou(dets.boxes[d], _mask_box(binary)) < o.reconstruction_bbox_iou_thresh
                        and float(dets.scores[d]) >= o.reconstruction_bbox_det_score):
                    override[trk_id] = dets.masks[d]
        periodic = (o.recondition_every_nth_frame > 0 and frame % o.recondition_every_nth_frame == 0
                    and bool(assoc.high_conf))
        if periodic or override:
            self._recondition(concept, frame, dets, assoc.high_conf, ids, trk_score, features, features_of,
                              num_frames, fallback)

        last: dict[int, int] = {}
        if ids:
            if o.suppress_overlapping_based_on_recent_occlusion_threshold > 0:
                trk, last = suppress_by_recent_occlusion(
                    trk, ids, concept.last_occluded, removed, frame,
                    o.suppress_overlapping_based_on_recent_occlusion_threshold, reverse)
            self._update_memories(concept, frame, trk, features)
        for oid in removed:
            last.pop(oid, None)
        concept.last_occluded = last

        for k, oid in zip(new.tolist(), born.tolist()):
            concept.scores[oid] = float(det_scores[k])
        for oid in removed:
            concept.scores[oid] = REMOVED_SCORE
        unconfirmed = None
        if o.masklet_confirmation_enable:
            alive = [i for i in ids if i not in removed] + born.tolist()
            concept.confirmation = update_confirmation(concept.confirmation, alive, assoc.matched, born,
                                                       o.masklet_confirmation_consecutive_det_thresh)
            unconfirmed = {i for i, s in concept.confirmation.items() if not s.confirmed}

        if len(new):
            g = self.make_concept_group()
            s = self.model_mask_size
            big = F.interpolate(dets.masks[torch.from_numpy(new)][:, None], size=(s, s), mode="bilinear",
                                align_corners=False)[:, 0] > 0
            for oid, m in zip(born.tolist(), big):
                g.add_model_mask(g.add_object(oid), frame, m, features, self.frame_size)
            g.preflight(features_of, num_frames, fallback, trim=False)
            g.frontier[reverse] = nxt
            concept.groups.append(g)
        for oid in removed:
            self.remove(oid, f"removed by the hot-start heuristics on frame {frame}")

        new_low = fill_holes(dets.masks[torch.from_numpy(new)][:, None].float(), o.fill_hole_area)[:, 0]
        out_low = torch.cat([trk, new_low.to(trk.device)]) if len(new) else trk
        for trk_id, m in override.items():
            out_low[ids.index(trk_id)] = m
        # the official frame-wise tracker scores: sigmoid of the object scores (removed tracks too: the official
        # code writes their -1e4 first and then overwrites it), the detection probability of new objects
        prio = torch.sigmoid(trk_score).tolist() + [float(det_scores[k]) for k in new.tolist()]
        return ConceptStep(obj_ids=ids + born.tolist(), low_res=out_low,
                           object_scores=trk_score.tolist() + [PRESENT_LOGIT] * len(new),
                           ious=trk_iou.tolist() + [1.0] * len(new), priority=prio, new_ids=born.tolist(),
                           removed=set(removed), suppressed=set(concept.book.suppressed.get(frame, ())),
                           unconfirmed=unconfirmed)

    def _recondition(self, concept: Concept, frame: int, dets: Detections, high_conf: dict[int, int],
                     ids: list[int], trk_score: Tensor, features: TrackerImageFeatures,
                     features_of: Callable[[int], TrackerImageFeatures], num_frames: Optional[int],
                     fallback: Optional[FallbackFn]) -> None:
        """Official ``_recondition_masklets``: each high-confidence detection's mask (bilinear to the memory
        encoder's input size, > 0) becomes a mask prompt of its track on this frame, which becomes a conditioning
        frame of the track's group (consolidated once per track, as officially; the memory maps are left to the
        frame's memory update, which replaces them)."""
        s = self.model_mask_size
        for trk_id, d in high_conf.items():
            if not float(trk_score[ids.index(trk_id)]) > RECONDITION_MIN_LOGIT:
                continue
            g = concept.group_of(trk_id)
            mask = F.interpolate(dets.masks[d:d + 1][:, None].float(), size=(s, s), mode="bilinear",
                                 align_corners=False)[0, 0] > 0
            g.add_model_mask(g.row(trk_id), frame, mask, features, self.frame_size)
            g.preflight(features_of, num_frames, fallback, encode=False, trim=False)

    def _update_memories(self, concept: Concept, frame: int, low_res: Tensor, features: TrackerImageFeatures) -> None:
        """Official ``_tracker_update_memories``: the tracks' logits bilinear to the memory encoder's input size,
        the shrunk ones suppressed, object scores +-10 from non-emptiness, one memory encoding per group."""
        s = self.model_mask_size
        high = suppress_shrunk(F.interpolate(low_res[:, None], size=(s, s), mode="bilinear", align_corners=False))
        present = (high > 0).flatten(1).any(dim=1, keepdim=True)
        score = torch.where(present, PRESENT_LOGIT, -PRESENT_LOGIT)
        k = 0
        for g in concept.groups:
            b = len(g)
            g.encode_memory(frame, high[k:k + b], score[k:k + b], features)
            k += b

    @torch.inference_mode()
    def track_refined(self, concept: Concept, frame: int, reverse: bool, features: TrackerImageFeatures,
                      num_frames: Optional[int]) -> list[tuple[int, Tensor, float, float]]:
        """One frame of the official partial propagation after refinement clicks: the groups holding refined
        objects are tracked (memory encoded from their own masks, no heuristics), hole-filled.

        Returns:
            (object id, (4g, 4g) logits, object-score logit, IoU) of every refined object.
        """
        refined = concept.refined[reverse]
        out = []
        for g in concept.groups:
            mine = [oid for oid in g.object_ids if oid in refined]
            if not mine:
                continue
            g.frontier[reverse] = frame - 1 if reverse else frame + 1
            low, obj = g.track(frame, reverse, features, num_frames)
            low = fill_holes(low.float(), self.options.fill_hole_area)
            iou = g.bank.get(frame).iou.reshape(len(g), -1)[:, 0]
            for oid in mine:
                r = g.row(oid)
                out.append((oid, low[r, 0], float(obj[r, 0]), float(iou[r])))
        return out


def _mask_box(binary: Tensor) -> Tensor:
    """(h, w) bool -> (4,) xyxy normalised by the mask size (official ``mask_to_box``: inclusive last pixel)."""
    h, w = binary.shape
    ys, xs = torch.nonzero(binary, as_tuple=True)
    return torch.stack([xs.min() / w, ys.min() / h, xs.max() / w, ys.max() / h]).float()


def _box_iou(a: Tensor, b: Tensor) -> float:
    """IoU of two xyxy boxes (official ``fast_diag_box_iou`` of one pair)."""
    lt = torch.maximum(a[:2], b[:2])
    rb = torch.minimum(a[2:], b[2:])
    inter = (rb - lt).clamp(min=0).prod()
    union = (a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter
    return float(inter / union)
