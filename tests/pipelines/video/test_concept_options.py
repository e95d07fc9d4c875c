"""``ConceptTrackOptions``: the released heuristics, the official no-heuristics preset, validation, and where the
options live (``VideoOptions.concepts``, ``sam3kit.ConceptTrackOptions``)."""

from __future__ import annotations

from dataclasses import fields

import pytest

import sam3kit
from sam3kit.errors import InputError
from sam3kit.pipelines.video import ConceptTrackOptions, VideoOptions

# Copied from Meta's sam3==0.1.4, sam3/model_builder.py, build_sam3_video_model: the keyword arguments given to
# Sam3VideoInferenceWithInstanceInteractivity with apply_temporal_disambiguation=True (the released model) ...
RELEASED = dict(
    score_threshold_detection=0.5, assoc_iou_thresh=0.1, det_nms_thresh=0.1, new_det_thresh=0.7, hotstart_delay=15,
    hotstart_unmatch_thresh=8, hotstart_dup_thresh=8, suppress_unmatched_only_within_hotstart=True,
    min_trk_keep_alive=-1, max_trk_keep_alive=30, init_trk_keep_alive=30,
    suppress_overlapping_based_on_recent_occlusion_threshold=0.7, suppress_det_close_to_boundary=False,
    fill_hole_area=16, recondition_every_nth_frame=16, masklet_confirmation_enable=False,
    decrease_trk_keep_alive_for_empty_masklets=False,
)
# ... and with apply_temporal_disambiguation=False ("a version without any heuristics for ablation studies")
NO_HEURISTICS = dict(RELEASED, hotstart_delay=0, hotstart_unmatch_thresh=0, hotstart_dup_thresh=0,
                     recondition_every_nth_frame=0)
# the Sam3VideoBase / Sam3VideoInferenceWithInstanceInteractivity defaults the builder does not override
CLASS_DEFAULTS = dict(trk_assoc_iou_thresh=0.5, max_num_objects=-1, masklet_confirmation_consecutive_det_thresh=3,
                      reconstruction_bbox_iou_thresh=0.0, reconstruction_bbox_det_score=0.0,
                      refinement_detector_cond_frame_removal_window=16)


def test_defaults_are_the_released_values():
    o = ConceptTrackOptions()
    for name, value in {**RELEASED, **CLASS_DEFAULTS}.items():
        assert getattr(o, name) == value, name
    assert {f.name for f in fields(o)} == set(RELEASED) | set(CLASS_DEFAULTS)
    assert o.object_limit == 10000  # the official "no limit"


def test_no_heuristics_preset():
    o = ConceptTrackOptions.no_heuristics()
    for name, value in {**NO_HEURISTICS, **CLASS_DEFAULTS}.items():
        assert getattr(o, name) == value, name


def test_where_the_options_live():
    assert sam3kit.ConceptTrackOptions is ConceptTrackOptions and "ConceptTrackOptions" in sam3kit.__all__
    assert VideoOptions().concepts == ConceptTrackOptions()
    o = VideoOptions(concepts=ConceptTrackOptions(hotstart_delay=4, hotstart_unmatch_thresh=2, hotstart_dup_thresh=2))
    assert o.concepts.hotstart_delay == 4
    with pytest.raises(InputError, match="ConceptTrackOptions"):
        VideoOptions(concepts={"hotstart_delay": 4})
    with pytest.raises(Exception):
        ConceptTrackOptions().hotstart_delay = 3  # frozen


@pytest.mark.parametrize("change,match", [
    (dict(score_threshold_detection=1.5), "probability in \\[0, 1\\]"),
    (dict(det_nms_thresh=-0.1), "IoU in \\[0, 1\\]"),
    (dict(new_det_thresh="high"), "must be a number"),
    (dict(hotstart_delay=-1), ">= 0"),
    (dict(hotstart_delay=5), "hotstart_unmatch_thresh \\(8\\) must be at most hotstart_delay \\(5\\)"),
    (dict(hotstart_delay=2.5), "must be an int"),
    (dict(fill_hole_area=True), "must be an int"),
    (dict(masklet_confirmation_enable=1), "True or False"),
    (dict(max_num_objects=0), "-1 \\(no limit\\) or >= 1"),
    (dict(init_trk_keep_alive=40), "min_trk_keep_alive <= init_trk_keep_alive <= max_trk_keep_alive"),
    (dict(recondition_every_nth_frame=-16), "0 = never"),
    (dict(masklet_confirmation_consecutive_det_thresh=0), ">= 1"),
])
def test_bad_values_are_refused(change, match):
    with pytest.raises(InputError, match=match):
        ConceptTrackOptions(**change)


def test_replace_validates():
    assert ConceptTrackOptions().replace(hotstart_delay=0).hotstart_delay == 0  # thresholds ignored without a delay
    with pytest.raises(InputError):
        ConceptTrackOptions().replace(assoc_iou_thresh=2.0)
