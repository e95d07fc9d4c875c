"""Concept detect-and-track on a ``VideoSession`` (``add_concept`` + ``propagate``), end to end on a tiny model.

The model is ``concept_models.concept_video_model``: random networks whose outputs get fixed offsets so that tracks
really exist (its docstring says which). On every frame detection 0 (probability 0.95) covers the blob every track
shows, detection 1 (0.6) a disjoint blob: a concept's first frame gives objects 1 and 2, object 2 then duplicates
object 1 and the hot start removes it before it is ever reported; object 1 is matched on every frame.

Checked: stable unique ids and what the hot start hides; outputs that never overlap and whose boxes are their masks'
boxes; streaming equal to the offline forward pass and frames reported after the hot-start delay; exemplars read on
their frame only; several concepts and plain ``add_prompt`` objects in one session; refinement clicks on a found
object (the others unchanged); ``remove_object``; bounded memory; every bad input refused with ``InputError``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam3kit.errors import InputError
from sam3kit.model.features import tensor_bytes
from sam3kit.io.video import FrameOutOfRange
from sam3kit.pipelines.video import ConceptTrackOptions, FrameResult, VideoOptions, VideoPredictor

from concept_models import concept_video_model
from video_clips import disc_centre, moving_disc_clip

H, W = 48, 64
SHORT = VideoOptions(concepts=ConceptTrackOptions(hotstart_delay=4, hotstart_unmatch_thresh=2, hotstart_dup_thresh=2))


@pytest.fixture(scope="module")
def cmodel():
    return concept_video_model()


@pytest.fixture(scope="module")
def clip8():
    return moving_disc_clip(8)


def _check_result(r: FrameResult):
    n = len(r)
    assert r.masks.shape == (n, H, W) and r.boxes.shape == (n, 4) and r.scores.shape == (n,)
    assert r.concepts.shape == (n,) and r.concepts.dtype == np.int64
    assert len(set(r.object_ids.tolist())) == n  # unique ids
    assert not (r.masks.sum(axis=0) > 1).any()  # no pixel belongs to two objects
    for m, b in zip(r.masks, r.boxes):
        if m.any():
            ys, xs = np.nonzero(m)
            assert b.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
        else:
            assert b.tolist() == [0, 0, 0, 0]


def test_text_concept_tracks_one_object_with_a_stable_id(cmodel, clip8):
    with VideoPredictor(cmodel, SHORT).start(clip8) as s:
        r = s.add_concept(0, text="a red disc")
        _check_result(r)
        assert r.object_ids.tolist() == [1, 2] and r.concepts.tolist() == [0, 0]  # both detections are born
        assert r.scores == pytest.approx([0.95, 0.6], abs=1e-5)  # their detection probabilities
        assert s.num_concepts == 1 and s.object_ids == [1, 2]
        got = list(s.propagate())
        assert [x.frame_index for x in got] == list(range(8))  # forward from the concept's frame; nothing before
        for x in got:
            _check_result(x)
            assert x.object_ids.tolist() == [1] and x.concepts.tolist() == [0]  # object 2 never reported
            assert x.masks[0].any() and x.scores[0] == pytest.approx(0.95, abs=1e-5)
        assert s.object_ids == [1]  # the hot start removed the duplicate
        assert s.result(5).object_ids.tolist() == [1]
        with pytest.raises(InputError, match="object 2 was removed by the hot-start heuristics on frame 2"):
            s.add_prompt(3, obj_id=2, points=[disc_centre(3, 8)])
        r = s.add_prompt(3, points=[disc_centre(3, 8)])  # a new plain object: ids are never reused
        assert r.object_ids.tolist() == [1, 3] and r.concepts.tolist() == [0, -1]


def test_propagating_again_reuses_the_results(cmodel, clip8):
    calls = []
    with VideoPredictor(cmodel, SHORT).start(clip8) as s:
        s.add_concept(2, text="a red disc")
        first = {x.frame_index: x for x in s.propagate()}
        assert sorted(first) == list(range(8))  # forward 2..7, then backward 1, 0
        plain_detect = cmodel.detect
        cmodel.detect = lambda *a, **k: calls.append(1) or plain_detect(*a, **k)
        try:
            again = list(s.propagate())
        finally:
            cmodel.detect = plain_detect
        assert not calls  # both directions were done: the official "fetch"
        for x in again:
            assert np.array_equal(x.masks, first[x.frame_index].masks)
            assert np.array_equal(x.object_ids, first[x.frame_index].object_ids)


def test_streaming_equals_offline_and_reports_after_the_delay(cmodel):
    clip = moving_disc_clip(16)  # 16 frames: the pointer scale min(num_frames, 16) is that of a stream

    def run(source):
        with VideoPredictor(cmodel).start(source) as s:
            s.add_concept(0, text="a red disc")
            return list(s.propagate(direction="forward"))

    pulled = []

    def stream():
        for k, f in enumerate(clip):
            pulled.append(k)
            yield f

    offline, streamed = run(clip), []
    seen = []
    with VideoPredictor(cmodel).start(stream()) as s:
        assert s.num_frames is None
        s.add_concept(0, text="a red disc")
        for x in s.propagate(direction="forward"):
            seen.append(len(pulled))
            streamed.append(x)
    assert [x.frame_index for x in streamed] == list(range(16))
    for a, b in zip(offline, streamed):
        assert np.array_equal(a.object_ids, b.object_ids) and np.array_equal(a.masks, b.masks)
        assert np.array_equal(a.scores, b.scores) and np.array_equal(a.boxes, b.boxes)
    # released delay 15: frame t is reported once frame t + 14 has been computed; the end of the stream flushes
    assert seen[0] == 15
    assert seen[1:] == [16] * 15


def test_without_heuristics_frames_come_at_once(cmodel, clip8):
    pulled = []

    def stream():
        for k, f in enumerate(clip8):
            pulled.append(k)
            yield f

    opts = VideoOptions(memory_selection=False, concepts=ConceptTrackOptions.no_heuristics())
    with VideoPredictor(cmodel, opts).start(stream()) as s:
        s.add_concept(0, text="a red disc")
        seen = [(x.frame_index, len(pulled), x.object_ids.tolist()) for x in s.propagate(direction="forward")]
    assert [f for f, _, _ in seen] == list(range(8)) and [p for _, p, _ in seen] == list(range(1, 9))
    assert all(ids[0] == 1 for _, _, ids in seen)  # no hot start: the duplicate stays (hidden by the non-overlap)


def test_several_concepts_and_plain_objects(cmodel, clip8):
    with VideoPredictor(cmodel, SHORT).start(clip8) as s:
        s.add_concept(0, text="a red disc")
        r = s.add_concept(1, text="a blue square")  # concept 1: its own objects, new ids
        assert s.num_concepts == 2 and r.object_ids.tolist()[-2:] == [3, 4] and r.concepts.tolist()[-2:] == [1, 1]
        r = s.add_prompt(1, points=[disc_centre(1, 8)])  # a plain object in the same session
        assert 5 in r.object_ids.tolist() and r.concepts[r.object_ids.tolist().index(5)] == -1
        got = list(s.propagate(direction="forward"))
        for x in got:
            _check_result(x)
            ids = x.object_ids.tolist()
            assert 2 not in ids and 4 not in ids  # each concept's duplicate removed, within its concept
            assert 5 in ids  # a plain object is always listed
            assert [c for i, c in zip(ids, x.concepts.tolist())] == [{1: 0, 3: 1, 5: -1}[i] for i in ids]
        assert s.object_ids == [1, 3, 5]
        # the three objects show the same blob: the non-overlap gives its pixels to one of them
        x = got[-1]
        assert sum(bool(m.any()) for m in x.masks) == 1


def test_exemplar_boxes_are_read_on_their_frame_and_the_next(cmodel, clip8):
    seen = []
    plain_detect = cmodel.detect

    def spy(image, text, boxes=None, box_labels=None, *a, **k):
        seen.append(None if boxes is None else boxes.shape[1])
        return plain_detect(image, text, boxes, box_labels, *a, **k)

    cmodel.detect = spy
    try:
        with VideoPredictor(cmodel, SHORT).start(clip8) as s:
            r = s.add_concept(3, boxes=[[20, 10, 40, 30]])  # exemplar only: detections on frame 3 only
            assert r.object_ids.tolist() == [1, 2] and seen == [1]
            got = list(s.propagate())
            assert seen == [1]  # no detector run anywhere else (the official allow_new_detections=False)
            assert [x.frame_index for x in got] == [3, 4, 5, 6, 7, 2, 1, 0]
            seen.clear()
            s.add_concept(3, text="a red disc", boxes=[[20, 10, 40, 30], [1, 1, 9, 9]], box_labels=[1, 0])
            list(s.propagate(direction="forward"))
            # text + boxes on frame 3 (its add_concept detections, reused) and, once, on frame 4: the official
            # detector computes frame 4 during frame 3, with frame 3's prompt; text only on 5..7
            assert seen == [2, 2, None, None, None]
    finally:
        cmodel.detect = plain_detect


def test_refinement_leaves_the_other_objects(cmodel, clip8):
    with VideoPredictor(cmodel, SHORT).start(clip8) as s:
        s.add_concept(0, text="a red disc")
        s.add_prompt(0, obj_id=7, box=[2, 2, 30, 20])  # a plain object
        before = {x.frame_index: x for x in s.propagate(direction="forward")}
        r = s.add_prompt(4, obj_id=1, points=[[50, 30]], point_labels=[1])
        _check_result(r)
        assert r.scores[r.object_ids.tolist().index(1)] == 1.0  # a refined object reports 1.0 (official)
        old, new = before[4].mask_of(1), r.mask_of(1)
        outside = ~old & ~new
        for oid in before[4].object_ids.tolist():
            if oid != 1:  # outside the refined object's masks, the others are unchanged
                assert np.array_equal(r.mask_of(oid) & outside, before[4].mask_of(oid) & outside)
        assert np.array_equal(s.result(4).masks, r.masks)
        again = {x.frame_index: x for x in s.propagate(direction="forward")}  # the refined object is tracked again
        assert sorted(again) == list(range(8))
        for x in again.values():
            _check_result(x)
            assert x.scores[x.object_ids.tolist().index(1)] == 1.0 if 1 in x.object_ids else True


def test_remove_object_hides_it_for_good(cmodel, clip8):
    with VideoPredictor(cmodel, SHORT).start(clip8) as s:
        s.add_concept(0, text="a red disc")
        list(s.propagate())
        s.remove_object(1)
        assert s.object_ids == []
        assert all(1 not in s.result(t).object_ids for t in range(8))
        with pytest.raises(InputError, match="already removed by remove_object"):
            s.remove_object(1)
        with pytest.raises(InputError, match="object 1 was removed by remove_object"):
            s.add_prompt(2, obj_id=1, points=[[10, 10]])
        r = s.add_concept(5, text="a red disc")
        assert min(r.object_ids.tolist()) == 3  # ids never reused
        s.reset()
        assert s.num_concepts == 0 and s.object_ids == []
        assert s.add_concept(0, text="a red disc").object_ids.tolist() == [1, 2]


def test_memory_stays_flat(cmodel):
    clip = moving_disc_clip(32)
    sizes = {}
    with VideoPredictor(cmodel).start(clip) as s:
        s.add_concept(0, text="a red disc")
        for x in s.propagate(direction="forward"):
            sizes[x.frame_index] = s.memory_bytes - s.results_bytes
    # what the session holds besides the compact results does not grow with the video
    assert sizes[31] <= sizes[16] * 1.05


def test_memory_bytes_counts_the_held_detector_features(cmodel):
    """During a concept propagation the session keeps the detector features of the frame just computed (the next
    frame's association reads them): ``memory_bytes`` counts them, each storage once."""
    with VideoPredictor(cmodel).start(moving_disc_clip(20)) as s:
        s.add_concept(0, text="a red disc")
        for x in s.propagate(direction="forward"):
            if s._detector_features:
                held = tensor_bytes(list(s._detector_features.values()))
                tracker = tensor_bytes(list(s._features.values()))
                assert held > 0
                others = sum(g.nbytes for g in s._groups) + s.results_bytes + s._concepts.nbytes
                assert s.memory_bytes == others + held + tracker  # the two necks share no storage
                break
        else:
            raise AssertionError("no frame held detector features during the propagation")


@pytest.mark.parametrize("kwargs,match", [
    (dict(text=""), "text is empty"),
    (dict(text="   "), "text is empty"),
    (dict(), "needs a text, exemplar boxes, or both"),
    (dict(box_labels=[1]), "box_labels were given without boxes"),
    (dict(boxes=[[10, 10, 80, 20]]), "outside the 64x48 image"),
    (dict(boxes=[[-1, 0, 10, 10]]), "outside the 64x48 image"),
    (dict(boxes=[[10, 10, 20, 20], [1, 1, 5, 5]], box_labels=[1]), "one label per prompt \\(2\\)"),
    (dict(boxes=[[10, 10, 20, 20]], box_labels=[2]), "must be 1 \\(positive"),
    (dict(text=5), "text must be a string"),
])
def test_bad_concepts_are_refused(cmodel, clip8, kwargs, match):
    with VideoPredictor(cmodel, SHORT).start(clip8) as s:
        with pytest.raises(InputError, match=match):
            s.add_concept(0, **kwargs)
        assert s.num_concepts == 0


def test_bad_frames_and_refinements_are_refused(cmodel, clip8):
    with VideoPredictor(cmodel, SHORT).start(clip8) as s:
        with pytest.raises(FrameOutOfRange, match="out of range: the video has 8 frames"):
            s.add_concept(8, text="a red disc")
        with pytest.raises(InputError, match="frame -1 is out of range"):
            s.add_concept(-1, text="a red disc")
        with pytest.raises(InputError, match="frame index"):
            s.add_concept(1.5, text="a red disc")
        s.add_concept(0, text="a red disc")
        with pytest.raises(InputError, match="object 1 has no result on frame 5 yet"):
            s.add_prompt(5, obj_id=1, points=[[10, 10]])
        with pytest.raises(InputError, match="too long|tokens long"):
            s.add_concept(0, text="red " * 40)


def test_object_limit_and_masklet_confirmation(cmodel, clip8):
    opts = VideoOptions(concepts=SHORT.concepts.replace(max_num_objects=1))
    with VideoPredictor(cmodel, opts).start(clip8) as s:
        assert s.add_concept(0, text="a red disc").object_ids.tolist() == [1]  # the best-scoring detection only
    # object 1 is matched on every frame (its birth and the first frame's revisit count too). With 3 consecutive
    # matches needed it is confirmed at once. With 12 it never is within 8 frames; a frame hides it when it is
    # unconfirmed 11 frames later (clamped to the last frame), a frame the official code looks up among the frames
    # computed so far: frames 0..3 leave the buffer (delay 4) before frame 7 is computed and show it, the frames the
    # end flushes do not
    for k, shown in ((3, [True] * 8), (12, [True] * 4 + [False] * 4)):
        opts = VideoOptions(concepts=SHORT.concepts.replace(masklet_confirmation_enable=True,
                                                            masklet_confirmation_consecutive_det_thresh=k))
        with VideoPredictor(cmodel, opts).start(clip8) as s:
            s.add_concept(0, text="a red disc")
            assert [1 in x.object_ids for x in s.propagate(direction="forward")] == shown
