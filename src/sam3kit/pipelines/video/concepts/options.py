"""``ConceptTrackOptions``: the heuristics of concept detect-and-track (official ``Sam3VideoBase``), with the official
field names and the values of the released model (``build_sam3_video_model``, ``apply_temporal_disambiguation=True``).
``ConceptTrackOptions.no_heuristics()`` is the official variant without temporal disambiguation."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ....errors import InputError

_PROBABILITIES = ("score_threshold_detection", "new_det_thresh", "reconstruction_bbox_det_score")
_IOUS = ("det_nms_thresh", "assoc_iou_thresh", "trk_assoc_iou_thresh",
         "suppress_overlapping_based_on_recent_occlusion_threshold", "reconstruction_bbox_iou_thresh")
_SIGNED_INTS = ("init_trk_keep_alive", "max_trk_keep_alive", "min_trk_keep_alive", "max_num_objects",
                "recondition_every_nth_frame")


@dataclass(frozen=True)
class ConceptTrackOptions:
    """How ``VideoSession.add_concept`` + ``propagate`` detect and track every instance of a concept.

    Detection (each frame):
        score_threshold_detection: keep detections whose probability (class x presence) is > this.
        det_nms_thresh: mask-IoU NMS among the kept detections (a detection overlapping a higher-scoring one by more
            than this IoU is dropped); 0 = no NMS.
        suppress_det_close_to_boundary: new detections whose box centre lies within 2.5 % of the frame border are not
            added as objects.
    Association (within a concept, masks of the 4g x 4g low resolution, binarised at 0):
        assoc_iou_thresh: a detection matches a track at IoU >= this (a matched detection is not a new object; two
            tracks matching one detection are duplicates).
        trk_assoc_iou_thresh: a non-empty track counts as matched on a frame if some detection has IoU >= this.
        new_det_thresh: a detection matching no track becomes a new object if its probability is >= this (when the
            concept tracks nothing yet, every kept detection does, as in the official code).
        max_num_objects: the most concept objects tracked at once over all concepts of a session (the new detections
            of a frame with the highest scores are kept); -1 = no limit (official -1, i.e. 10000).
    Hot start (remove tracks that were spurious in their first frames):
        hotstart_delay: outputs are held back this many frames (frame t is reported once frame t + delay - 1 has
            been computed, the official buffer), so that removals within an object's first frames are never seen;
            0 = no delay and no removal.
        hotstart_unmatch_thresh: remove a track unmatched on at least this many frames while within its hot-start
            window (it first appeared fewer than ``hotstart_delay`` frames ago).
        hotstart_dup_thresh: remove the later of two tracks that matched the same detection on at least this many
            frames while the later one is within its hot-start window.
        init_trk_keep_alive, max_trk_keep_alive, min_trk_keep_alive: a per-track counter (+1 when matched, -1 when
            unmatched, within [min, max]); a track at <= 0 has its output hidden on that frame, only when
            ``suppress_unmatched_only_within_hotstart`` is False.
        suppress_unmatched_only_within_hotstart: see above (True: unmatched tracks are only removed in the hot start).
        decrease_trk_keep_alive_for_empty_masklets: empty tracks count down the keep-alive too.
    Tracking:
        suppress_overlapping_based_on_recent_occlusion_threshold: of two tracks whose masks overlap by IoU >= this,
            the one occluded (empty) more recently is blanked on that frame (memory included); 0 = off.
        fill_hole_area: holes and specks of at most this many low-resolution pixels are filled / removed in every
            track and new detection (official ``fill_holes_in_mask_scores``); 0 = off.
        recondition_every_nth_frame: on frames t with t % n == 0, a track matched by a high-confidence detection
            (probability >= 0.8, IoU >= 0.8) whose object-score logit is > 0.8 gets the detection's mask as a prompt
            (a conditioning frame of its tracker state); 0 = never.
        reconstruction_bbox_iou_thresh, reconstruction_bbox_det_score: re-condition (and output the detection's mask)
            when the box of a track's mask and of its high-confidence detection overlap by less than this IoU and the
            detection's probability is >= the score; 0 = off (released).
    Output:
        masklet_confirmation_enable: hide an object until it has been matched by detections on
            ``masklet_confirmation_consecutive_det_thresh`` consecutive frames.
    Refinement (``add_prompt`` on an object found by a concept):
        refinement_detector_cond_frame_removal_window: the frames where a detection prompted the refined object's
            tracker state within this many frames of the click stop being conditioning frames.

    The official model without temporal disambiguation also turns the tracker's memory selection off; with
    ``no_heuristics()`` use ``VideoOptions(memory_selection=False, concepts=ConceptTrackOptions.no_heuristics())``.
    """

    score_threshold_detection: float = 0.5
    det_nms_thresh: float = 0.1
    assoc_iou_thresh: float = 0.1
    trk_assoc_iou_thresh: float = 0.5
    new_det_thresh: float = 0.7
    hotstart_delay: int = 15
    hotstart_unmatch_thresh: int = 8
    hotstart_dup_thresh: int = 8
    suppress_unmatched_only_within_hotstart: bool = True
    init_trk_keep_alive: int = 30
    max_trk_keep_alive: int = 30
    min_trk_keep_alive: int = -1
    suppress_overlapping_based_on_recent_occlusion_threshold: float = 0.7
    decrease_trk_keep_alive_for_empty_masklets: bool = False
    suppress_det_close_to_boundary: bool = False
    fill_hole_area: int = 16
    max_num_objects: int = -1
    recondition_every_nth_frame: int = 16
    masklet_confirmation_enable: bool = False
    masklet_confirmation_consecutive_det_thresh: int = 3
    reconstruction_bbox_iou_thresh: float = 0.0
    reconstruction_bbox_det_score: float = 0.0
    refinement_detector_cond_frame_removal_window: int = 16

    @classmethod
    def no_heuristics(cls) -> "ConceptTrackOptions":
        """The official variant "without any heuristics" (``build_sam3_video_model(apply_temporal_disambiguation=
        False)``): no hot start (delay 0, thresholds 0) and no re-conditioning; every other value released."""
        return cls(hotstart_delay=0, hotstart_unmatch_thresh=0, hotstart_dup_thresh=0, recondition_every_nth_frame=0)

    def replace(self, **changes) -> "ConceptTrackOptions":
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(v, (bool, np.bool_)):
                    raise InputError(f"ConceptTrackOptions.{f.name} must be True or False, got {v!r}")
            elif f.type in ("int", int):
                if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
                    raise InputError(f"ConceptTrackOptions.{f.name} must be an int, got {v!r}")
                if f.name not in _SIGNED_INTS and v < 0:
                    raise InputError(f"ConceptTrackOptions.{f.name} must be >= 0, got {v}")
            else:
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    raise InputError(f"ConceptTrackOptions.{f.name} must be a number, got {v!r}") from None
                if not 0.0 <= x <= 1.0:
                    what = "a probability" if f.name in _PROBABILITIES else "an IoU"
                    raise InputError(f"ConceptTrackOptions.{f.name} must be {what} in [0, 1], got {v!r}")
        if self.hotstart_delay > 0:
            for name in ("hotstart_unmatch_thresh", "hotstart_dup_thresh"):
                if getattr(self, name) > self.hotstart_delay:
                    raise InputError(f"ConceptTrackOptions.{name} ({getattr(self, name)}) must be at most "
                                     f"hotstart_delay ({self.hotstart_delay}): a track is only removed within its "
                                     "hot-start window")
        if not self.min_trk_keep_alive <= self.init_trk_keep_alive <= self.max_trk_keep_alive:
            raise InputError("ConceptTrackOptions keep-alive values must satisfy min_trk_keep_alive <= "
                             f"init_trk_keep_alive <= max_trk_keep_alive, got {self.min_trk_keep_alive}, "
                             f"{self.init_trk_keep_alive}, {self.max_trk_keep_alive}")
        if self.max_num_objects == 0 or self.max_num_objects < -1:
            raise InputError(f"ConceptTrackOptions.max_num_objects must be -1 (no limit) or >= 1, got "
                             f"{self.max_num_objects}")
        if self.recondition_every_nth_frame < 0:
            raise InputError(f"ConceptTrackOptions.recondition_every_nth_frame must be >= 0 (0 = never), got "
                             f"{self.recondition_every_nth_frame}")
        if self.masklet_confirmation_consecutive_det_thresh < 1:
            raise InputError("ConceptTrackOptions.masklet_confirmation_consecutive_det_thresh must be >= 1, got "
                             f"{self.masklet_confirmation_consecutive_det_thresh}")

    @property
    def object_limit(self) -> int:
        """``max_num_objects`` as a number (the official 10000 for "no limit")."""
        return 10000 if self.max_num_objects < 0 else int(self.max_num_objects)
