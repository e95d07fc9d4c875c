"""The heuristics of concept detect-and-track, one module at a time, on small literal inputs.

Each step is checked two ways: against a plain reference written here from the official algorithm (loops over the
definitions of ``Sam3VideoBase`` in Meta's ``sam3==0.1.4``), on random inputs; and against what the official functions
returned on the literal inputs below (``_associate_det_trk``, ``perflib.nms.nms_masks``, ``_process_hotstart``,
``_get_objects_to_suppress_based_on_most_recently_occluded``, ``Sam3TrackerPredictor._suppress_object_pw_area_shrinkage``
and ``_apply_object_wise_non_overlapping_constraints``, run once on a CPU and frozen here as literals).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sam3kit.pipelines.video.concepts.associate import Association, associate
from sam3kit.pipelines.video.concepts.confirmation import update_confirmation
from sam3kit.pipelines.video.concepts.detections import (joint_logits, mask_iou, nms_keep, select_detections)
from sam3kit.pipelines.video.concepts.hotstart import HotstartBook, process_hotstart
from sam3kit.pipelines.video.concepts.occlusion import (ALWAYS_OCCLUDED, SUPPRESSED_LOGIT, objects_to_suppress,
                                                        suppress_by_recent_occlusion)
from sam3kit.pipelines.video.concepts.options import ConceptTrackOptions
from sam3kit.pipelines.video.concepts.outputs import OutputBuffer, PendingFrame
from sam3kit.pipelines.video.concepts.overlap import object_wise_non_overlap, suppress_shrunk

E = np.zeros(0, np.int64)


def ids(*v):
    return np.array(v, dtype=np.int64)


def rect(size, y0, y1, x0, x1, inside=2.0, outside=-2.0):
    m = torch.full((size, size), outside)
    m[y0:y1, x0:x1] = inside
    return m


def random_masks(rng, n, size=10):
    m = torch.full((n, size, size), -1.0)
    for i in range(n):
        y, x = rng.integers(0, size - 3, 2)
        h, w = rng.integers(2, 7, 2)
        m[i, y:y + h, x:x + w] = 1.0
    return m


def ref_iou(a, b):
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return inter / max(union, 1)


# ----------------------------------------------------------------------------- detections
def test_joint_score_is_the_clamped_round_trip():
    cls = torch.tensor([-20.0, -1.0, 0.0, 0.5, 3.0, 12.0])
    pres = torch.tensor(1.5)
    got = joint_logits(cls, pres)
    for c, g in zip(cls.tolist(), got.tolist()):
        p = 1 / (1 + math.exp(-c)) / (1 + math.exp(-1.5))
        x1, x2 = max(p, 1e-3), max(1 - p, 1e-3)
        assert g == pytest.approx(max(-10.0, min(10.0, math.log(x1 / x2))), abs=1e-5)


def ref_nms(probs, masks, prob_thr, iou_thr):
    """Official nms_masks: candidates above the threshold by decreasing probability, each drops the later ones
    overlapping it by more than the IoU threshold."""
    probs = probs.tolist()
    cand = [i for i, p in enumerate(probs) if p > prob_thr]
    cand.sort(key=lambda i: -probs[i])
    binary = (masks > 0).numpy()
    keep = []
    while cand:
        i = cand.pop(0)
        keep.append(i)
        cand = [j for j in cand if ref_iou(binary[i], binary[j]) <= iou_thr]
    return [i in keep for i in range(len(probs))]


def test_nms_official_values():
    masks = torch.stack([rect(8, 0, 4, 0, 4), rect(8, 0, 4, 1, 4), rect(8, 4, 8, 4, 8), rect(8, 0, 4, 2, 6),
                         rect(8, 5, 8, 5, 8), rect(8, 0, 8, 0, 8)])
    probs = torch.tensor([0.7, 0.9, 0.6, 0.8, 0.65, 0.4])
    # frozen from the official nms_masks
    assert nms_keep(probs, masks, 0.5, 0.1).tolist() == [False, True, False, False, True, False]
    assert nms_keep(probs, masks, 0.5, 0.5).tolist() == [False, True, False, True, True, False]


def test_nms_matches_the_reference():
    rng = np.random.default_rng(0)
    for _ in range(100):
        q = int(rng.integers(1, 9))
        probs = torch.from_numpy(rng.permutation(np.linspace(0.3, 0.95, 9))[:q]).float()  # no ties
        masks = random_masks(rng, q)
        for thr in (0.0, 0.1, 0.5):
            assert nms_keep(probs, masks, 0.5, thr).tolist() == ref_nms(probs, masks, 0.5, thr)


def test_nms_ties_follow_numpy_argsort():
    """Equal probabilities are visited in the order of numpy's reversed ``argsort`` (the official CPU NMS)."""
    probs = torch.full((4,), 0.8)
    masks = torch.stack([rect(8, 0, 4, 0, 4)] * 4)
    first = int(np.argsort(probs.numpy())[::-1][0])
    assert nms_keep(probs, masks, 0.5, 0.1).tolist() == [i == first for i in range(4)]


def test_select_detections_threshold_nms_and_query_order():
    q = 5
    cls = torch.tensor([2.0, 3.0, -5.0, 1.0, 2.5])
    masks = torch.stack([rect(8, 0, 4, 0, 4), rect(8, 0, 4, 0, 4), rect(8, 4, 8, 4, 8), rect(8, 4, 8, 0, 3),
                         rect(8, 4, 8, 4, 8)])
    boxes = torch.rand(q, 4)
    d = select_detections(cls, torch.tensor(10.0), boxes, masks, score_threshold=0.5, nms_threshold=0.1)
    # query 0 duplicates the higher-scoring query 1, query 4 suppresses nothing it overlaps (2 is below 0.5)
    assert d.scores.shape == (3,)
    assert torch.equal(d.boxes, boxes[[1, 3, 4]]) and torch.equal(d.masks, masks[[1, 3, 4]])  # query order kept
    assert len(select_detections(cls, torch.tensor(10.0), boxes, masks, score_threshold=0.5, nms_threshold=0.1,
                                 allow_new=False)) == 0
    assert len(select_detections(cls, torch.tensor(10.0), boxes, masks, score_threshold=0.5,
                                 nms_threshold=0.0)) == 4  # NMS off


# ----------------------------------------------------------------------------- association
def ref_associate(det, scores, trk, trk_ids, a_thr=0.1, t_thr=0.5, n_thr=0.7):
    if len(trk_ids) == 0:
        return list(range(len(scores))), [], [], {}, {}
    db, tb = (det > 0).numpy(), (trk > 0).numpy()
    if len(scores) == 0:
        nonempty = [t.any() for t in tb]
        return [], [i for i, ne in zip(trk_ids, nonempty) if ne], [i for i, ne in zip(trk_ids, nonempty) if not ne], {}, {}
    iou = np.array([[ref_iou(d, t) for t in tb] for d in db])
    unmatched = [trk_ids[j] for j in range(len(trk_ids)) if tb[j].any() and not (iou[:, j] >= t_thr).any()]
    empty = [trk_ids[j] for j in range(len(trk_ids)) if not tb[j].any()]
    new = [d for d in range(len(scores)) if scores[d] >= n_thr and not (iou[d] >= a_thr).any()]
    matched = {d: [trk_ids[j] for j in range(len(trk_ids)) if iou[d, j] >= a_thr] for d in range(len(scores))}
    high = {}
    for d in range(len(scores)):
        if scores[d] >= 0.8 and d not in new and iou[d].max() >= 0.8:
            high[trk_ids[int(np.argmax(iou[d]))]] = d
    return new, unmatched, empty, matched, high


def _as_lists(a: Association):
    return (a.new.tolist(), a.unmatched.tolist(), a.empty.tolist(), {k: v.tolist() for k, v in a.matched.items()},
            a.high_conf)


def test_association_official_values():
    det = torch.stack([rect(8, 0, 4, 0, 4), rect(8, 4, 8, 4, 8), rect(8, 0, 2, 6, 8), rect(8, 5, 8, 0, 3)])
    trk = torch.stack([rect(8, 0, 4, 0, 3), rect(8, 4, 8, 3, 8), rect(8, 0, 4, 0, 4), torch.full((8, 8), -1.0),
                       rect(8, 6, 8, 6, 8)])
    a = associate(det, np.array([0.95, 0.85, 0.75, 0.6], np.float32), trk, ids(3, 5, 6, 8, 9),
                  assoc_iou_thresh=0.1, trk_assoc_iou_thresh=0.5, new_det_thresh=0.7)
    # frozen from the official _associate_det_trk
    assert _as_lists(a) == ([2], [9], [8], {0: [3, 6], 1: [5, 9], 2: [], 3: []}, {6: 0, 5: 1})


def test_association_matches_the_reference():
    rng = np.random.default_rng(1)
    for _ in range(150):
        n, m = int(rng.integers(0, 5)), int(rng.integers(0, 5))
        det, trk = random_masks(rng, n), random_masks(rng, m)
        if m and rng.random() < 0.3:
            trk[0] = -1.0
        scores = rng.choice([0.55, 0.72, 0.81, 0.95], n).astype(np.float32)
        tid = list(range(10, 10 + m))
        got = associate(det, scores, trk, np.array(tid, dtype=np.int64), assoc_iou_thresh=0.1,
                        trk_assoc_iou_thresh=0.5, new_det_thresh=0.7)
        want = ref_associate(det, scores.tolist(), trk, tid)
        assert _as_lists(got)[:3] == tuple(want[:3])
        assert _as_lists(got)[3:] == (want[3] if m else {}, want[4] if m else {})


def test_association_without_tracks_makes_every_detection_new():
    det = torch.stack([rect(8, 0, 4, 0, 4), rect(8, 4, 8, 4, 8)])
    a = associate(det, np.array([0.55, 0.6], np.float32), torch.zeros(0, 8, 8), E, assoc_iou_thresh=0.1,
                  trk_assoc_iou_thresh=0.5, new_det_thresh=0.7)
    assert a.new.tolist() == [0, 1]  # below new_det_thresh, but nothing is tracked yet (official)


# ----------------------------------------------------------------------------- hot start
HOT = ConceptTrackOptions(hotstart_delay=4, hotstart_unmatch_thresh=2, hotstart_dup_thresh=2,
                          suppress_unmatched_only_within_hotstart=False, init_trk_keep_alive=1, max_trk_keep_alive=2,
                          min_trk_keep_alive=-1)


def test_hotstart_official_sequence():
    """Frame, new ids, unmatched tracks, detection -> matched tracks; then what the official _process_hotstart
    removed, the keep-alive counters and the suppressed ids of the frame (frozen)."""
    steps = [
        (0, ids(1, 2, 3), E, {}),
        (1, E, ids(3), {0: ids(1, 2), 1: ids(1)}),
        (2, E, ids(3), {0: ids(1, 2)}),
        (3, ids(4), E, {0: ids(1)}),
        (4, E, ids(1), {0: ids(4)}),
        (5, E, ids(1, 4), {}),
        (6, E, ids(1, 4), {}),
    ]
    expected = [
        ([], {1: 1, 2: 1, 3: 1}, []),
        ([], {1: 2, 2: 2, 3: 0}, [3]),
        ([2, 3], {1: 2, 2: 2, 3: -1}, []),        # 3: unmatched twice; 2: duplicate of 1 twice
        ([], {1: 2, 2: 2, 3: -1, 4: 1}, []),
        ([], {1: 1, 2: 2, 3: -1, 4: 2}, []),
        ([], {1: 0, 2: 2, 3: -1, 4: 1}, [1]),     # 1 is out of its hot start: never removed, only suppressed
        ([4], {1: -1, 2: 2, 3: -1, 4: 0}, [1]),
    ]
    book = HotstartBook()
    for (t, new, un, matched), (rem, alive, sup) in zip(steps, expected):
        got = process_hotstart(book, t, False, Association(new=E, unmatched=un, empty=E, matched=matched), new, HOT)
        assert sorted(got) == rem, t
        assert dict(book.keep_alive) == alive, t
        assert sorted(book.suppressed.get(t, ())) == sup, t
    assert book.removed == {2, 3, 4}


def test_hotstart_backwards_mirrors_the_window():
    """Backwards, a track is within its hot start while its first frame is < frame + delay."""
    o = ConceptTrackOptions(hotstart_delay=4, hotstart_unmatch_thresh=2, hotstart_dup_thresh=2)
    book = HotstartBook()
    process_hotstart(book, 10, True, Association(new=E, unmatched=E, empty=E), ids(1), o)
    process_hotstart(book, 9, True, Association(new=E, unmatched=ids(1), empty=E), E, o)
    assert process_hotstart(book, 8, True, Association(new=E, unmatched=ids(1), empty=E), E, o) == {1}  # 10 < 12
    book = HotstartBook()
    process_hotstart(book, 10, True, Association(new=E, unmatched=E, empty=E), ids(1), o)
    for t in (9, 8, 7, 6):
        process_hotstart(book, t, True, Association(new=E, unmatched=E, empty=E, matched={0: ids(1)}), E, o)
    assert process_hotstart(book, 5, True, Association(new=E, unmatched=ids(1), empty=E), E, o) == set()
    assert process_hotstart(book, 4, True, Association(new=E, unmatched=ids(1), empty=E), E, o) == set()  # 10 >= 8
    assert book.unmatched_frames[1] == [5, 4] and book.removed == set()


# ----------------------------------------------------------------------------- occlusion
def ref_suppress(masks, last, thr, reverse):
    n = len(last)
    out = [False] * n
    b = masks.numpy()
    for i in range(n):
        for j in range(i + 1, n):
            if ref_iou(b[i], b[j]) < thr:
                continue
            later = (lambda x, y: x < y) if reverse else (lambda x, y: x > y)
            if later(last[i], last[j]) and last[j] > -1:
                out[i] = True
            if later(last[j], last[i]) and last[i] > -1:
                out[j] = True
    return out


def test_occlusion_official_values():
    masks = torch.stack([rect(6, 0, 3, 0, 3), rect(6, 0, 3, 0, 3), rect(6, 3, 6, 3, 6), rect(6, 3, 6, 3, 5),
                         rect(6, 0, 1, 5, 6)]) > 0
    last = torch.tensor([4, -1, 2, 7, -1])
    assert objects_to_suppress(masks, last, 0.7, False).tolist() == [False] * 5
    assert objects_to_suppress(masks, last, 0.7, True).tolist() == [False, True, False, False, False]


def test_occlusion_matches_the_reference():
    rng = np.random.default_rng(2)
    for _ in range(100):
        n = int(rng.integers(1, 6))
        m = random_masks(rng, n) > 0
        if n > 1:
            m[1] = m[0]
        last = rng.choice([-1, 2, 5, ALWAYS_OCCLUDED], n).tolist()
        for rev in (False, True):
            assert objects_to_suppress(m, torch.tensor(last), 0.7, rev).tolist() == ref_suppress(m, last, 0.7, rev)


def test_occlusion_bookkeeping_and_blanking():
    a = rect(6, 0, 3, 0, 3)
    logits = torch.stack([a, a.clone(), torch.full((6, 6), -1.0), rect(6, 4, 6, 4, 6)])
    # object 11 was occluded on frame 3, object 10 on frame 1: 11 is the more recently occluded one of the pair
    out, last = suppress_by_recent_occlusion(logits, [10, 11, 12, 13], {10: 1, 11: 3}, newly_removed={13}, frame=8,
                                             threshold=0.7, reverse=False)
    assert (out[1] == SUPPRESSED_LOGIT).all() and torch.equal(out[0], logits[0]) and torch.equal(out[3], logits[3])
    assert last == {10: 1, 11: 8, 12: 8, 13: ALWAYS_OCCLUDED}  # suppressed and empty ones: this frame
    # a track never occluded suppresses nobody and is suppressed by nobody (official)
    out, _ = suppress_by_recent_occlusion(logits, [10, 11, 12, 13], {11: 3}, newly_removed=set(), frame=8,
                                          threshold=0.7, reverse=False)
    assert torch.equal(out[:2], logits[:2])
    # a track the hot start removes on this frame is always occluded: any other overlapping track wins
    out, _ = suppress_by_recent_occlusion(torch.stack([a, a.clone()]), [1, 2], {1: 5}, newly_removed={2}, frame=9,
                                          threshold=0.7, reverse=False)
    assert (out[1] == SUPPRESSED_LOGIT).all() and torch.equal(out[0], a)


# ----------------------------------------------------------------------------- the two non-overlap rules
def shrink_case():
    a = rect(6, 0, 4, 0, 4, 3.0, -3.0)
    b = rect(6, 0, 3, 0, 3, 5.0, -5.0)
    c = rect(6, 3, 6, 3, 6, 1.0, -1.0)
    d = rect(6, 2, 6, 2, 6, 0.5, -4.0)
    return torch.stack([a, b, c, d])[:, None]


def test_memory_shrinkage_official_values():
    x = shrink_case()
    out = suppress_shrunk(x)
    # frozen: only the last track loses more than 70 % of its area to the pixel-wise arg-max; it is suppressed
    assert [bool((out[i] != x[i]).any()) for i in range(4)] == [False, False, False, True]
    assert (out[3] <= -10).all()  # clamped to <= -10 everywhere; the other tracks keep their overlaps


def test_output_non_overlap_official_values_and_ties():
    x = shrink_case()[:, 0] > 0
    out = object_wise_non_overlap(x, torch.tensor([0.6, 0.9, 0.3, 0.9]))
    assert out.flatten(1).sum(1).tolist() == [4, 9, 0, 15]  # frozen from the official function
    # each pixel: the highest score; a tie goes to the first object
    tie = object_wise_non_overlap(torch.ones(2, 2, 2, dtype=torch.bool), torch.tensor([0.5, 0.5]))
    assert tie[0].all() and not tie[1].any()
    # a winner whose score is <= 0 keeps nothing (background value 0)
    assert not object_wise_non_overlap(torch.ones(2, 2, 2, dtype=torch.bool), torch.tensor([-1.0, -2.0])).any()


def test_mask_iou_empty_union_is_zero():
    z = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert mask_iou(z, z).item() == 0.0


# ----------------------------------------------------------------------------- the output buffer
def _frames(items):
    return [p.frame for p in items]


def test_hotstart_buffer_delay_and_flush():
    buf = OutputBuffer(delay=15)
    released = []
    for t in range(20):
        out = _frames(buf.push(PendingFrame(t), last=t == 19))
        released.append(out)
        if t < 14:
            assert out == []
    assert released[14] == [0] and released[15] == [1] and released[18] == [4]  # t leaves once t + 14 is computed
    assert released[19] == list(range(5, 20))  # the last frame flushes
    buf = OutputBuffer(delay=3)
    for t in range(5):
        buf.push(PendingFrame(t))
    assert _frames(buf.flush()) == [3, 4]  # the end of a stream
    assert _frames(OutputBuffer(delay=0).push(PendingFrame(7))) == [7]


def test_confirmation_lookup_ahead():
    buf = OutputBuffer(delay=4, confirmation_lag=2, num_frames=6)
    for t in range(6):
        buf.push(PendingFrame(t), {t})
    assert buf.unconfirmed_at(1) == {3} and buf.unconfirmed_at(5) == {5}  # clamped to the last frame
    back = OutputBuffer(delay=4, reverse=True, confirmation_lag=2)
    back.push(PendingFrame(3), {3})
    assert back.unconfirmed_at(5) == {3} and back.unconfirmed_at(1) == set()
    assert OutputBuffer(delay=0, confirmation_lag=2).unconfirmed_at(0) == set()  # officially only with a delay


def test_masklet_confirmation():
    st = update_confirmation({}, [1], {}, ids(1), 3)  # born: one matched frame
    st = update_confirmation(st, [1, 2], {0: ids(1)}, ids(2), 3)
    assert st[1].consecutive == 2 and not st[1].confirmed and st[2].consecutive == 1
    st = update_confirmation(st, [1, 2], {0: ids(1)}, E, 3)
    assert st[1].confirmed and st[2].consecutive == 0 and not st[2].confirmed
    st = update_confirmation(st, [1], {}, E, 3)
    assert st[1].confirmed and st[1].consecutive == 0 and 2 not in st  # confirmed for good; gone ids dropped
