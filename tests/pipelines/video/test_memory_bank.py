"""The memory bank's policy, as pure functions: which prompted frames, memories and pointers a frame reads (the
official ``select_closest_cond_frames``, ``frame_filter`` and ``_prepare_memory_conditioned_features`` at
inference, quirks included), what the bank keeps, and the memory-selection score.

The official golden files check the same choices frame by frame on real runs (``test_official_golden_video``);
these tests pin the rules on constructed cases, including ones the golden clips do not reach.
"""

from __future__ import annotations

import torch

from sam3kit.pipelines.video.memory_bank import (COND, NON_COND, MemoryPolicy, choose_memories, filter_frames,
                                                 frames_to_keep, select_conditioning, selection_score)

SEL = MemoryPolicy(memory_selection=True)
PLAIN = MemoryPolicy(memory_selection=False)


def test_select_conditioning_keeps_all_up_to_the_limit_in_their_order():
    assert select_conditioning(5, [9, 0, 3], 4) == ([9, 0, 3], [])


def test_select_conditioning_closest_before_after_then_nearest():
    # before 20: 10; at/after 20: 30; then by distance: 0 (20) and 40 (20) tie -> conditioning order decides
    sel, unsel = select_conditioning(20, [40, 0, 10, 30, 50], 4)
    assert sel == [10, 30, 40, 0] and unsel == [50]
    sel, unsel = select_conditioning(20, [0, 40, 10, 30, 50], 4)
    assert sel == [10, 30, 0, 40] and unsel == [50]
    # a prompted frame equal to t counts as "after"
    sel, _ = select_conditioning(30, [0, 10, 30, 50, 60], 3)
    assert sel == [10, 30, 50]


def test_filter_never_scans_frame_zero_forwards_but_appends_it():
    scores = {f: 1.0 for f in range(0, 10)}
    assert filter_frames(1, False, scores, 20, SEL) == [0]
    assert filter_frames(3, False, scores, 20, SEL) == [1, 2]  # frame 0 is valid but never scanned
    # backwards it scans up to the last frame
    assert filter_frames(7, True, scores, 10, SEL) == [9, 8]


def test_filter_threshold_cap_and_adjacent_frame():
    scores = {f: (0.5 if f % 3 else 0.0) for f in range(1, 60)}
    v = filter_frames(60, False, scores, 100, SEL)
    assert v[-1] == 59 and len(v) == 15  # 15 valid frames (59 itself is valid) walking back from 59
    assert all(scores[f] > 0.01 for f in v)
    v = filter_frames(58, False, scores, 100, SEL)  # 57 is invalid: it is appended as the adjacent frame
    assert v[-1] == 57 and len(v) == 16 and scores[57] == 0.0
    # frames without a score are skipped; a short video caps the list at num_frames - 1 frames
    assert filter_frames(5, False, {1: 1.0, 2: None, 3: 1.0, 4: 1.0}, 50, SEL) == [1, 3, 4]
    assert filter_frames(5, False, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, 4, SEL) == [2, 3, 4]
    # the first frame forwards and the last frame backwards read nothing
    assert filter_frames(0, False, scores, 100, SEL) == []
    assert filter_frames(99, True, scores, 100, SEL) == []


def test_choose_without_selection_slots_and_pointers():
    non_cond = {f: None for f in range(1, 30)}
    ch = choose_memories(20, False, [0], non_cond, 100, PLAIN)
    assert ch.spatial[0] == (0, 6, COND)
    # slots t_rel = 6 .. 1 -> frames 14 .. 19, tpos index t_rel - 1
    assert ch.spatial[1:] == tuple((20 - r, r - 1, NON_COND) for r in range(6, 0, -1))
    assert ch.pointers[0] == (0, 20, COND)
    assert [p[0] for p in ch.pointers[1:]] == list(range(19, 4, -1))  # 15 pointers t-1 .. t-15
    assert [p[1] for p in ch.pointers[1:]] == list(range(1, 16))
    assert ch.pointer_scale == 16
    # backwards: frames after t, the prompted frame's pointer offset keeps its sign flipped
    ch = choose_memories(3, True, [10], {f: None for f in range(4, 10)}, 12, PLAIN)
    assert [s[0] for s in ch.spatial] == [10, 9, 8, 7, 6, 5, 4]
    assert ch.pointers[0] == (10, 7, COND)
    assert ch.pointer_scale == 12


def test_choose_with_selection_pointers_skip_the_oldest_valid_frame():
    non_cond = {f: 1.0 for f in range(1, 4)}
    ch = choose_memories(4, False, [0], non_cond, 50, SEL)  # valid = [1, 2, 3]
    assert [s[0] for s in ch.spatial] == [0, 1, 2, 3]
    assert [p[0] for p in ch.pointers] == [0, 3, 2]  # valid[0] = 1 is not used as a pointer (official loop bound)
    # frame 1 after the prompted frame 0: valid = [0] (the adjacent frame, a selected prompted frame): nothing else
    ch = choose_memories(1, False, [0], {}, 50, SEL)
    assert ch.spatial == ((0, 6, COND),) and ch.pointers == ((0, 1, COND),)


def test_pointers_from_future_prompted_frames_are_not_read_forwards():
    ch = choose_memories(5, False, [0, 9], {f: None for f in range(1, 5)}, 20, PLAIN)
    assert {s[0] for s in ch.spatial if s[2] == COND} == {0, 9}  # both memories
    assert [p[0] for p in ch.pointers if p[2] == COND] == [0]    # only the past pointer


def test_unselected_prompted_frame_is_read_as_a_recent_memory():
    cond = [0, 2, 30, 40, 50]  # 5 prompted frames, 4 selected for t = 4: 2 (before), 30 (after), 0, 40
    ch = choose_memories(4, False, cond, {1: None, 3: None}, 100, PLAIN)
    assert [s[0] for s in ch.spatial if s[1] == 6] == [2, 30, 0, 40]
    assert (3, 0, NON_COND) in ch.spatial and (1, 2, NON_COND) in ch.spatial
    # t = 5 with prompted frames 0 .. 4: 4, 3, 2, 1 are selected; frame 0 (t - 5) is read as a recent memory
    ch = choose_memories(5, False, [0, 1, 2, 3, 4], {}, 100, PLAIN)
    assert [s for s in ch.spatial if s[1] != 6] == [(0, 4, COND)]
    assert (0, 5, COND) in ch.pointers


def test_stream_of_unknown_length_counts_as_long():
    ch = choose_memories(40, False, [0], {f: 1.0 for f in range(1, 40)}, None, SEL)
    # 15 valid frames 25..39 (the adjacent 39 among them); pointers: all but the oldest
    assert ch.pointer_scale == 16 and [p[0] for p in ch.pointers if p[2] == NON_COND] == list(range(39, 25, -1))


def test_frames_to_keep_is_bounded():
    scores = {f: 1.0 for f in range(1, 400) if f != 200}
    queries = [(400, False), (201, False), (199, True)]  # propagation end, next to the prompted frame 200
    # next to the prompted frame, its own slot (t_rel = 1) is the prompted frame: 5 memories on each side
    spatial, pointers = frames_to_keep(queries, [200], scores, 1000, SEL)
    assert spatial == set(range(394, 400)) | set(range(195, 200)) | set(range(201, 206))
    assert pointers == set(range(385, 400)) | set(range(185, 200)) | set(range(201, 216))  # the filter lists
    spatial, pointers = frames_to_keep(queries, [200], scores, 1000, PLAIN)
    assert spatial == set(range(394, 400)) | set(range(195, 200)) | set(range(201, 206))
    assert pointers == set(range(385, 400)) | set(range(186, 200)) | set(range(201, 215))


def _later_reads(t, scores, cond, n_frames, policy, new_scores):
    """Frames of ``scores`` read by frames t, t + 1, ... when the frames before them get ``new_scores``."""
    s = dict(scores)
    spatial, pointers = set(), set()
    for k, sc in enumerate([None] + list(new_scores)):
        if sc is not None:
            s[t + k - 1] = sc
        ch = choose_memories(t + k, False, cond, s, n_frames, policy)
        spatial |= {f for f, _, st in ch.spatial if st == NON_COND and f in scores}
        pointers |= {f for f, _, st in ch.pointers if st == NON_COND and f in scores}
    return spatial, pointers


def test_what_is_kept_covers_every_later_frame():
    """Keeping what the next frame can read is enough: the frames after it read, of the frames held now, only
    kept ones (random scores around the threshold, so that frames drop in and out of the filter)."""
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        scores = {f: float(torch.rand(1, generator=g)) * 0.03 for f in range(1, 60)}
        new = [float(torch.rand(1, generator=g)) * 0.03 for _ in range(8)]
        for policy in (SEL, PLAIN):
            kept_s, kept_p = frames_to_keep([(60, False)], [0], scores, 200, policy)
            read_s, read_p = _later_reads(60, scores, [0], 200, policy, new)
            assert read_s <= kept_s and read_p <= kept_p


def test_selection_score_broadcast_quirk():
    obj = torch.tensor([[2.0], [-1.0]])  # the second object is absent: rescaled score 0
    iou = torch.tensor([0.8, 0.4])
    norm = torch.tensor([2 * torch.sigmoid(torch.tensor(2.0)) - 1, 0.0])
    # tracked frame: (B, 1) x (B,) broadcasts to B x B -> mean(score) * mean(iou)
    assert abs(selection_score(obj, iou) - float(norm.mean() * iou.mean())) < 1e-7
    # prompted frame: (B, 1) x (B, 1) -> mean(score * iou)
    assert abs(selection_score(obj, iou[:, None]) - float((norm * iou).mean())) < 1e-7
