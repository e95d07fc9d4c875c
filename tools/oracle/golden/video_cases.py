"""The cases of the video golden files (``tests/golden/official_video/cases.pt``): each runs on a fresh official
inference state of the tiny video model, on one of the synthetic clips, as a list of steps (see ``video_tracker``)."""
from __future__ import annotations

import torch

from .video_inputs import S, box_of, make_clips, pixel_values
from .video_tracker import CaseRecorder, add_step, propagate_step


def _c(clip, t, shape, dx=0.25, dy=-0.5):
    """A click near the centre of a shape on frame t (pixels, x y)."""
    x, y = clip["centres"][t][shape]
    return [x + dx, y + dy]


def _bg():
    """A background click: a corner pixel far from both shapes on every frame."""
    return [8.5, 104.0]


# name -> (clip, description, steps(clip) -> list of ("add_points" | "add_mask" | "propagate", kwargs))
CASES = {
    "one_click": ("clip12", "one positive click on the disc at frame 0, propagate forward over the whole clip",
                  lambda c: [("add_points", dict(frame=0, obj_id=1, points=[_c(c, 0, "disc")], labels=[1])),
                             ("propagate", dict(direction="forward"))]),
    "several_clicks": ("clip12",
                       "three clicks on frame 0 in three calls (positive; then negative on the background and positive "
                       "in the disc with clear_old_points=False, so the click history grows and the previous low-res "
                       "logits are fed back as the mask prompt), then forward with max_frame_num_to_track=5 "
                       "(frames 0..5: the official end frame is start + max, inclusive)",
                       lambda c: [("add_points", dict(frame=0, obj_id=1, points=[_c(c, 0, "disc")], labels=[1])),
                                  ("add_points", dict(frame=0, obj_id=1, points=[_bg()], labels=[0],
                                                      clear_old_points=False)),
                                  ("add_points", dict(frame=0, obj_id=1, points=[_c(c, 0, "disc", 6.0, 4.0)],
                                                      labels=[1], clear_old_points=False)),
                                  ("propagate", dict(direction="forward", max_frames=5))]),
    "many_clicks": ("clip12",
                    "18 clicks in one call on frame 3 (labels alternate 1, 0): the prompt keeps the first 8 and the "
                    "last 8; then both directions with max_frame_num_to_track=2 (forward 3..5, then backward 3..1)",
                    lambda c: [("add_points", dict(frame=3, obj_id=1,
                                                   points=[[10.0 + 5.0 * i, 20.0 + 4.0 * (i % 5)] for i in range(18)],
                                                   labels=[1 - i % 2 for i in range(18)])),
                               ("propagate", dict(direction="both", max_frames=2))]),
    "box": ("clip12", "a box around the square on the last frame (11), propagate backward over the whole clip",
            lambda c: [("add_points", dict(frame=11, obj_id=1, box=box_of(c["square"][11]))),
                       ("propagate", dict(direction="backward"))]),
    "box_and_click": ("clip12", "a box around the square plus one positive click in it on frame 0 (one call), "
                      "forward with max_frame_num_to_track=3",
                      lambda c: [("add_points", dict(frame=0, obj_id=1, box=box_of(c["square"][0]),
                                                     points=[_c(c, 0, "square")], labels=[1])),
                                 ("propagate", dict(direction="forward", max_frames=3))]),
    "mask": ("clip12", "a mask prompt (the exact visible disc) on frame 2, propagate forward (frames 2..11)",
             lambda c: [("add_mask", dict(frame=2, obj_id=1, mask=c["disc"][2])),
                        ("propagate", dict(direction="forward"))]),
    "empty_mask_object": ("clip12",
                          "object 1 clicked on frame 0, object 2 given an all-false mask on frame 0 (absent: object "
                          "score -10, the no-object pointer, the no-object spatial embedding added to its memory); "
                          "forward with max_frame_num_to_track=4",
                          lambda c: [("add_points", dict(frame=0, obj_id=1, points=[_c(c, 0, "disc")], labels=[1])),
                                     ("add_mask", dict(frame=0, obj_id=2, mask=torch.zeros(S, S, dtype=torch.bool))),
                                     ("propagate", dict(direction="forward", max_frames=4))]),
    "two_objects": ("clip12",
                    "two objects on frame 0 in one state (id 1: click on the disc; id 2: box around the square); the "
                    "consolidated prompt-frame masks overlap, so the non-overlap constraint changes the memory encoder "
                    "input on frame 0; propagate forward",
                    lambda c: [("add_points", dict(frame=0, obj_id=1, points=[_c(c, 0, "disc")], labels=[1])),
                               ("add_points", dict(frame=0, obj_id=2, box=box_of(c["square"][0]))),
                               ("propagate", dict(direction="forward"))]),
    "refine": ("clip12",
               "click on frame 0, propagate forward; then a negative refinement click on frame 6 (already tracked: "
               "not an initial conditioning frame, the tracked low-res logits are the mask prompt, no memory "
               "attention since use_prev_mem_frame=False), then propagate forward again from the default start "
               "(the first conditioning frame, 0): frames 1..5 now also see conditioning frame 6",
               lambda c: [("add_points", dict(frame=0, obj_id=1, points=[_c(c, 0, "disc")], labels=[1])),
                          ("propagate", dict(direction="forward")),
                          ("add_points", dict(frame=6, obj_id=1, points=[_c(c, 6, "disc", 10.0, 9.0)], labels=[0])),
                          ("propagate", dict(direction="forward"))]),
    "both_directions": ("clip12",
                        "click on the disc at frame 5, propagate both: forward 5..11, then backward 5..0 (frame 5 is "
                        "yielded twice; the backward pass reads the forward pass's frames 6.. as memories)",
                        lambda c: [("add_points", dict(frame=5, obj_id=1, points=[_c(c, 5, "disc")], labels=[1])),
                                   ("propagate", dict(direction="both"))]),
    "long_memory": ("clip20",
                    "click on the disc at frame 0 of a 20-frame clip, propagate forward: the 6 non-conditioning slots "
                    "fill from frame 7 on, memory selection keeps at most min(T, 16) - 1 = 15 frames from frame 16 on "
                    "(so 14 non-conditioning pointers; frame 1 leaves the list at frame 17) and would skip frames "
                    "whose eff_iou_score <= 0.01 (none here, see meta.json: memory_selection)",
                    lambda c: [("add_points", dict(frame=0, obj_id=1, points=[_c(c, 0, "disc")], labels=[1])),
                               ("propagate", dict(direction="forward"))]),
}


@torch.inference_mode()
def run_case(trk, name, clips):
    clip_name, description, steps_fn = CASES[name]
    clip = clips[clip_name]
    frames = clip["frames"]
    n = frames.shape[0]
    state = trk.init_state(video_height=S, video_width=S, num_frames=n)
    state["images"] = pixel_values(frames)
    assert state["storage_device"] == torch.device("cpu")
    rec = CaseRecorder(trk, state)
    steps = []
    with rec.hooks():
        for kind, kw in steps_fn(clip):
            if kind == "propagate":
                steps.append(propagate_step(trk, state, rec, **kw))
            else:
                steps.append(add_step(trk, state, rec, kind, **kw))
    assert not rec.events, rec.events
    pos = state["constants"]["maskmem_pos_enc"]
    return dict(clip=clip_name, description=description, frames=frames, num_frames=n, video_size=[S, S],
                steps=steps, maskmem_pos_enc=pos[-1].detach().clone())


def run_all(trk, names=None):
    clips = make_clips()
    return {name: run_case(trk, name, clips) for name in (names or CASES)}
