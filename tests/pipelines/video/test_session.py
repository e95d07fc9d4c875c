"""VideoSession behaviour on a tiny random model: the API contract (prompts, propagation order, results read back,
objects, reset, close), what a new prompt changes, frames encoded once as propagation reaches them, and every bad
input refused with a documented exception type."""

from __future__ import annotations

import numpy as np
import pytest

import sam3kit
from sam3kit.errors import ImageError, InputError
from sam3kit.io.video import FrameOutOfRange
from sam3kit.pipelines.video import FrameResult, VideoOptions, VideoPredictor

from video_clips import disc_centre, moving_disc_clip

N = 10
H, W = 48, 64


@pytest.fixture
def session(model, clip):
    s = VideoPredictor(model).start(clip)
    yield s
    s.close()


def _click(t=0):
    return [disc_centre(t, N)]


def test_public_names():
    assert sam3kit.VideoPredictor is VideoPredictor and sam3kit.VideoOptions is VideoOptions
    assert sam3kit.FrameResult is FrameResult
    assert {"VideoPredictor", "VideoOptions", "FrameResult"} <= set(sam3kit.__all__)


def test_defaults_are_the_released_video_tracker():
    o = VideoOptions()
    assert o.memory_selection and not o.return_logits and o.fill_hole_area == 0 and not o.non_overlap_output
    assert o.max_points == 16 and o.max_conditioning_frames == 4 and o.clear_memory_around_prompts
    assert o.bounded_memory and not o.offload


def test_add_prompt_result_and_ids(session):
    assert session.num_frames == N and session.frame_size == (H, W)
    r = session.add_prompt(0, points=_click(), point_labels=[1])
    assert isinstance(r, FrameResult) and r.frame_index == 0
    assert r.object_ids.tolist() == [1] and r.object_ids.dtype == np.int64
    assert r.masks.shape == (1, H, W) and r.masks.dtype == bool and r.masks.any()
    assert r.boxes.shape == (1, 4) and r.boxes.dtype == np.float32
    assert r.scores.shape == (1,) and r.scores.dtype == np.float32 and 0 < r.scores[0] <= 1
    assert r.mask_logits is None
    ys, xs = np.nonzero(r.masks[0])
    assert r.boxes[0].tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
    r2 = session.add_prompt(3, box=[30, 10, 60, 40])  # obj_id None: the next free id
    assert r2.object_ids.tolist() == [1, 2]
    assert not r2.masks[0].any() and r2.scores[0] == 0  # object 1 has no output on frame 3 yet: empty, score 0
    assert session.object_ids == [1, 2]


@pytest.mark.parametrize("direction,start,max_frames,order", [
    ("forward", None, None, list(range(2, N))),
    ("backward", None, None, [2, 1, 0]),
    ("both", None, None, list(range(2, N)) + [1, 0]),
    ("forward", 4, 2, [4, 5, 6]),                      # max_frames beyond the start (official max_frame_num_to_track)
    ("backward", 5, 1, [5, 4]),
    ("both", 5, 2, [5, 6, 7, 4, 3]),
    ("backward", 0, None, [0]),
])
def test_propagation_order(model, clip, direction, start, max_frames, order):
    with VideoPredictor(model).start(clip) as s:
        s.add_prompt(2, points=[disc_centre(2, N)])
        got = [r.frame_index for r in s.propagate(start=start, direction=direction, max_frames=max_frames)]
        assert got == order
        assert s.frames_with_results == sorted(set(order) | {2})


def test_results_are_kept_and_read_back(session):
    session.add_prompt(0, points=_click())
    yielded = {r.frame_index: r for r in session.propagate()}
    assert sorted(yielded) == list(range(N))
    for t, r in yielded.items():
        back = session.result(t)
        assert back.object_ids.tolist() == r.object_ids.tolist()
        assert np.array_equal(back.masks, r.masks) and np.array_equal(back.boxes, r.boxes)
        assert np.array_equal(back.scores, r.scores)
    assert session.results_bytes > 0
    assert sum(r.masks.any() for r in yielded.values()) > N // 2  # the tiny model tracks something


def test_return_logits(model, clip):
    with VideoPredictor(model, VideoOptions(return_logits=True)).start(clip) as s:
        r = s.add_prompt(0, points=_click())
        assert r.mask_logits.shape == (1, H, W) and r.mask_logits.dtype == np.float32
        assert np.array_equal(r.masks, r.mask_logits > 0)
        for r in s.propagate(direction="forward", max_frames=3):
            assert np.array_equal(r.masks, r.mask_logits > 0)


def test_a_new_prompt_changes_its_frame_only_until_propagation(session):
    session.add_prompt(0, points=_click())
    before = {r.frame_index: r for r in session.propagate(direction="forward")}
    refined = session.add_prompt(6, obj_id=1, points=[[5.0, 5.0]], point_labels=[0])
    assert np.array_equal(session.result(6).masks, refined.masks)
    for t in range(N):
        if t != 6:
            assert np.array_equal(session.result(t).masks, before[t].masks)
    after = {r.frame_index: r for r in session.propagate(direction="forward")}
    assert sorted(after) == list(range(N))
    assert np.array_equal(after[0].masks, before[0].masks)  # the prompted frame 0 is unchanged


def test_clicks_accumulate_on_a_frame(model, clip):
    with VideoPredictor(model, VideoOptions(return_logits=True)).start(clip) as s:
        a = s.add_prompt(0, points=_click())
        b = s.add_prompt(0, obj_id=1, points=[[3.0, 3.0]], point_labels=[0])
        g = s._groups[0]
        assert g.points[0][0][0].shape[1] == 2  # the history grew
        c = s.add_prompt(0, obj_id=1, points=[[3.0, 3.0]], point_labels=[0], clear_old_points=True)
        assert g.points[0][0][0].shape[1] == 1
        assert not np.array_equal(a.mask_logits, b.mask_logits)
        assert c.masks.shape == (1, H, W)


def test_click_history_keeps_first_and_last_eight(model, clip):
    with VideoPredictor(model).start(clip) as s:
        pts = [[2.0 + 3 * i, 5.0 + i] for i in range(18)]
        s.add_prompt(1, points=pts, point_labels=[1 - i % 2 for i in range(18)])
        coords, labels = s._groups[0].points[0][1]
        assert coords.shape == (1, 16, 2)
        kept = s._transform.points_from_model(coords[0]).numpy()
        expect = np.array(pts[:8] + pts[-8:], dtype=np.float32)
        assert np.allclose(kept, expect, atol=1e-4)


def test_objects_added_after_propagation_get_their_own_group(session):
    session.add_prompt(0, points=_click())
    list(session.propagate(direction="forward", max_frames=3))
    r = session.add_prompt(5, points=[[50.0, 10.0]])
    assert r.object_ids.tolist() == [1, 2] and len(session._groups) == 2
    results = list(session.propagate())
    assert [x.frame_index for x in results] == list(range(N))
    assert all(x.object_ids.tolist() == [1, 2] for x in results)


def test_two_objects_before_propagation_share_a_group(session):
    session.add_prompt(0, points=_click())
    session.add_prompt(0, obj_id=7, box=[2, 2, 30, 30])
    assert len(session._groups) == 1 and session.object_ids == [1, 7]
    assert all(r.object_ids.tolist() == [1, 7] for r in session.propagate(direction="forward"))


def test_remove_object(session):
    session.add_prompt(0, points=_click())
    session.add_prompt(0, obj_id=2, box=[2, 2, 30, 30])
    before = {r.frame_index: r for r in session.propagate(direction="forward")}
    session.remove_object(2)
    assert session.object_ids == [1]
    for t in range(N):
        back = session.result(t)
        assert back.object_ids.tolist() == [1] and np.array_equal(back.masks[0], before[t].masks[0])
    assert [r.object_ids.tolist() for r in session.propagate(direction="forward", max_frames=2)] == [[1]] * 3
    session.remove_object(1)
    assert session.object_ids == [] and not session._groups
    with pytest.raises(InputError, match="no object 1"):
        session.remove_object(1)


def test_reset_keeps_the_video(session):
    session.add_prompt(0, points=_click())
    list(session.propagate(direction="forward", max_frames=2))
    session.reset()
    assert session.object_ids == [] and session.frames_with_results == [] and session.num_frames == N
    with pytest.raises(InputError, match="no result"):
        session.result(0)
    with pytest.raises(InputError, match="add a prompt"):
        session.propagate()
    assert session.add_prompt(4, points=[disc_centre(4, N)]).object_ids.tolist() == [1]


def test_close_is_idempotent_and_later_calls_raise(model, clip):
    s = VideoPredictor(model).start(clip)
    s.add_prompt(0, points=_click())
    s.close()
    s.close()
    assert s.closed and s.memory_bytes == 0
    for call in (lambda: s.add_prompt(0, points=_click()), lambda: s.propagate(), lambda: s.result(0),
                 lambda: s.remove_object(1), lambda: s.reset(), lambda: s.__enter__()):
        with pytest.raises(InputError, match="closed"):
            call()
    with VideoPredictor(model).start(clip) as s2:
        s2.add_prompt(0, points=_click())
    assert s2.closed


def test_frames_are_encoded_once_as_propagation_reaches_them(model, clip):
    calls = []
    hook = model.image_trunk_module().register_forward_hook(lambda *a: calls.append(1))
    try:
        with VideoPredictor(model).start(clip) as s:
            s.add_prompt(0, points=_click())
            assert len(calls) == 1
            it = s.propagate(direction="forward")
            assert len(calls) == 1  # prompt frame features are still held; nothing else is encoded yet
            next(it), next(it), next(it)
            assert len(calls) == 3  # frame 0 again not needed; frames 1, 2
            list(it)
            assert len(calls) == N
            assert len(s._features) <= 1  # only the frame just tracked
    finally:
        hook.remove()


def test_session_is_locked_while_propagating(session):
    session.add_prompt(0, points=_click())
    it = session.propagate(direction="forward")
    next(it)
    with pytest.raises(InputError, match="still running"):
        session.add_prompt(1, points=_click(1))
    with pytest.raises(InputError, match="still running"):
        session.propagate()
    assert session.result(0).frame_index == 0  # reading is fine
    it.close()
    session.add_prompt(1, points=_click(1), obj_id=1)


def test_stream_of_unknown_length(model):
    frames = moving_disc_clip(7)
    with VideoPredictor(model).start(iter(frames)) as s:
        assert s.num_frames is None and s.frame_size == (H, W)
        s.add_prompt(0, points=_click())
        got = [r.frame_index for r in s.propagate(direction="forward")]
        assert got == list(range(7)) and s.num_frames == 7


def test_video_file_and_folder(model, clip, tmp_path):
    """A video file (decoded lazily with PyAV, seeking for the backward pass) and a folder of frames in numeric
    order give the same kind of session as a list."""
    pytest.importorskip("av")
    from PIL import Image

    from sam3kit.io.video import write_video

    path = write_video(tmp_path / "clip.mp4", clip, fps=10)
    with VideoPredictor(model).start(path) as s:
        assert s.num_frames == N and s.frame_size == (H, W)
        s.add_prompt(4, points=[disc_centre(4, N)])
        assert [r.frame_index for r in s.propagate()] == list(range(4, N)) + [3, 2, 1, 0]
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, f in enumerate(clip):
        Image.fromarray(f).save(folder / f"{t}.png")
    with VideoPredictor(model).start(folder) as s, VideoPredictor(model).start(clip) as ref:
        for x in (s, ref):
            x.add_prompt(0, points=_click())
        for a, b in zip(s.propagate(direction="forward"), ref.propagate(direction="forward")):
            assert np.array_equal(a.masks, b.masks)  # PNG frames are lossless: same frames, same tracks


def test_mask_prompt(session):
    mask = np.zeros((H, W), dtype=bool)
    mask[10:30, 20:40] = True
    r = session.add_prompt(2, mask=mask)
    assert np.array_equal(r.masks[0], mask)  # the mask is the output on its frame
    assert r.scores[0] > 0.999
    out = {x.frame_index: x for x in session.propagate(direction="forward", max_frames=2)}
    assert sorted(out) == [2, 3, 4]
    assert (out[2].masks[0] ^ mask).sum() <= 0.05 * mask.sum()  # via the low-resolution mask


def test_per_object_outputs_forgotten_around_prompted_frames(model, clip):
    """The official predictor, for an object tracked alone, forgets its per-object outputs within 7 frames of a
    prompted frame whenever propagation passes that frame; they come back when a frame is tracked again. So after
    "both" from frame 2 (forward 2..9, then backward from 2, which forgets -5..9 again), a click on frames 3..9 gets
    no previous logits, on frames 0 and 1 it does. With two objects nothing is forgotten."""
    with VideoPredictor(model).start(clip) as s:
        s.add_prompt(2, points=[disc_centre(2, N)])
        list(s.propagate(direction="both"))
        g = s._groups[0]
        assert [g._previous_logits(0, t, s._fallback) is not None for t in range(N)] == [True] * 3 + [False] * 7
    with VideoPredictor(model).start(clip) as s:
        s.add_prompt(2, points=[disc_centre(2, N)])
        s.add_prompt(2, obj_id=2, box=[2, 2, 30, 30])
        list(s.propagate(direction="both"))
        g = s._groups[0]
        assert all(g._previous_logits(0, t, s._fallback) is not None for t in range(N))


def test_refinement_far_from_what_the_bank_keeps(model):
    """A click on a tracked frame whose outputs the bounded bank dropped reuses the stored mask (+-10 logits) as
    its mask prompt, where the official predictor (every frame kept: ``bounded_memory=False``) reuses the logits."""
    frames = moving_disc_clip(40)
    out = {}
    for bounded in (True, False):
        with VideoPredictor(model, VideoOptions(bounded_memory=bounded)).start(frames) as s:
            s.add_prompt(0, points=[disc_centre(0, 40)])
            list(s.propagate(direction="forward"))
            g = s._groups[0]
            held = 15 in g.bank.non_cond and g.bank.non_cond[15].low_res is not None
            prev = g._previous_logits(0, 15, s._fallback)
            out[bounded] = (held, prev, s.add_prompt(15, obj_id=1, points=[[5.0, 5.0]], point_labels=[0]))
    assert not out[True][0] and out[False][0]
    stand_in = out[True][1]
    assert stand_in is not None and set(stand_in.unique().tolist()) <= {-10.0, 10.0}
    assert np.array_equal((stand_in[0, 0] > 0).numpy(), (out[False][1][0, 0] > 0).numpy())
    assert out[True][2].masks.shape == (1, H, W)


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_documented_errors(session):
    with pytest.raises(FrameOutOfRange, match="out of range"):
        session.add_prompt(N, points=_click())
    with pytest.raises(InputError, match="out of range"):
        session.add_prompt(-1, points=_click())
    with pytest.raises(InputError, match="frame index"):
        session.add_prompt(1.5, points=_click())
    with pytest.raises(InputError, match="outside"):
        session.add_prompt(0, points=[[W + 5, 3]])
    with pytest.raises(InputError, match="outside"):
        session.add_prompt(0, box=[0, 0, W + 1, 10])
    with pytest.raises(InputError, match="one label per prompt"):
        session.add_prompt(0, points=[[3, 3], [4, 4]], point_labels=[1])
    with pytest.raises(InputError, match="mask must be an"):
        session.add_prompt(0, mask=np.zeros((H + 1, W), dtype=bool))
    with pytest.raises(InputError, match="not both"):
        session.add_prompt(0, points=_click(), mask=np.zeros((H, W), dtype=bool))
    with pytest.raises(InputError, match="needs points"):
        session.add_prompt(0)
    with pytest.raises(InputError, match="obj_id"):
        session.add_prompt(0, obj_id=-3, points=_click())
    with pytest.raises(InputError, match="add a prompt"):
        session.propagate()
    with pytest.raises(InputError, match="no object 5"):
        session.remove_object(5)
    with pytest.raises(InputError, match="no result"):
        session.result(0)
    session.add_prompt(0, points=_click())
    with pytest.raises(InputError, match="direction"):
        session.propagate(direction="sideways")
    with pytest.raises(InputError, match="out of range"):
        session.propagate(start=N)
    with pytest.raises(InputError, match="max_frames"):
        session.propagate(max_frames=-1)
    assert session.object_ids == [1]  # nothing above changed the session


def test_bad_videos_and_options(model, tmp_path):
    p = VideoPredictor(model)
    with pytest.raises(ImageError):
        p.start(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError):
        p.start(tmp_path / "empty")
    with pytest.raises(ImageError):
        p.start([])
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(ImageError):
        p.start(tmp_path / "broken.mp4")
    with pytest.raises(InputError):
        p.start(42)
    with pytest.raises(InputError, match="VideoOptions"):
        VideoPredictor(model, options={"memory_selection": False})
    with pytest.raises(InputError, match="Sam3Model"):
        VideoPredictor("facebook/sam3")
    with pytest.raises(InputError, match="True or False"):
        VideoOptions(memory_selection="yes")
    with pytest.raises(InputError, match="max_conditioning_frames"):
        VideoOptions(max_conditioning_frames=1)
