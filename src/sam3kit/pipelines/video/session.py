"""``VideoSession``: prompts, propagation and results on one video (``VideoPredictor.start``).

A session holds the frame source (frames are decoded when asked for and not kept), the features of the few frames
it still needs, one ``TrackGroup`` per set of objects tracked together, and the compact results of every frame it
has produced. Objects prompted before the first propagation form one group, as the objects of one official
``Sam3TrackerPredictor`` inference state; an object first prompted after a propagation starts a new group (the
official predictor refuses new objects once tracking has started; SAM 3's video model likewise gives each object
clicked later a tracker state of its own). All groups step through the same frames in the same order.

Coordinates are pixels of the original frame: points (x, y), boxes xyxy; masks are (H, W) bool at the frame's
size. Results are ``FrameResult``; a frame produced once can be read again with ``result(frame)``.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ...io.video import EndOfVideo, FrameSource
from ...model.features import TrackerImageFeatures
from ...model.sam3 import Sam3Model
from ...model.tracker.video_step import NO_OBJECT_SCORE
from .. import prompts as P
from ..coords import ImageTransform
from ..encoding import ImageEncoder
from .group import Fallback, TrackGroup
from .memory_bank import MAX_POINTER_FRAMES, MemoryPolicy
from .options import VideoOptions
from .postprocess import finish, to_frame_size
from .checks import frame_index, frame_mask, object_id
from .results import FrameResult, ResultStore

log = logging.getLogger(__name__)

DIRECTIONS = ("both", "forward", "backward")


class VideoSession:
    """Tracking on one video. Create it with ``VideoPredictor.start(video)``; use it as a context manager or call
    ``close()``.

    Attributes:
        num_frames: frames in the video, or None for a stream whose end has not been reached.
        frame_size: (H, W) of the frames.
        options: the ``VideoOptions``.
    """

    def __init__(self, model: Sam3Model, source: FrameSource, encoder: ImageEncoder, options: VideoOptions, *,
                 owns_source: bool = True) -> None:
        self._model = model
        self._tracker = model.tracker_model
        self._source = source
        self._owns_source = owns_source
        self._encoder = encoder
        self.options = options
        cfg = self._tracker.config
        self._policy = MemoryPolicy(num_maskmem=cfg.num_maskmem, max_conditioning_frames=options.max_conditioning_frames,
                                    max_pointers=MAX_POINTER_FRAMES, memory_selection=options.memory_selection,
                                    selection_threshold=float(options.selection_threshold))
        dev = model.device
        self._storage = torch.device("cpu") if options.offload and dev.type != "cpu" else dev
        h, w = source.frame_size
        self._transform = ImageTransform(height=h, width=w, size=cfg.image_size)
        self._groups: list[TrackGroup] = []
        self._group_of: dict[int, TrackGroup] = {}
        self._results = ResultStore()
        self._features: dict[int, TrackerImageFeatures] = {}
        self._next_id = 1
        self._propagating = False
        self._closed = False

    # ------------------------------------------------------------------ properties
    @property
    def num_frames(self) -> Optional[int]:
        return self._source.num_frames

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self._source.frame_size)

    @property
    def object_ids(self) -> list[int]:
        """The objects of the session, in the order they were created."""
        return [oid for g in self._groups for oid in g.object_ids]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def memory_bytes(self) -> int:
        """Bytes the session holds: memories, pointers and logits of the memory bank, pending prompt outputs,
        the features of the frames it still needs, and the compact stored results (the frame source's small
        window of decoded frames is not counted)."""
        n = sum(g.nbytes for g in self._groups) + self._results.nbytes
        for f in self._features.values():
            n += sum(t.numel() * t.element_size() for t in [f.embed, *f.high_res])
        return n

    @property
    def results_bytes(self) -> int:
        """The part of ``memory_bytes`` taken by the stored (run-length encoded) results."""
        return self._results.nbytes

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"objects={self.object_ids}"
        return f"VideoSession({self._source.name!r}, num_frames={self.num_frames}, frame_size={self.frame_size}, {state})"

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> "VideoSession":
        self._check_open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Free everything the session holds (and close the video it opened). Idempotent; any later call raises
        ``InputError``."""
        if self._closed:
            return
        self._closed = True
        self._drop_state()
        if self._owns_source:
            self._source.close()

    def reset(self) -> None:
        """Forget every prompt, object and result; the video stays open (object ids start again at 1)."""
        self._check_usable()
        self._drop_state()

    def _drop_state(self) -> None:
        self._groups.clear()
        self._group_of.clear()
        self._results.clear()
        self._features.clear()
        self._next_id = 1

    def _check_open(self) -> None:
        if self._closed:
            raise InputError("this video session is closed; start a new one with VideoPredictor.start(video)")

    def _check_usable(self) -> None:
        self._check_open()
        if self._propagating:
            raise InputError("a propagation of this session is still running: iterate it to the end or close() its "
                             "iterator before changing the session")

    # ------------------------------------------------------------------ frames and features
    def _frame_features(self, frame: int) -> TrackerImageFeatures:
        f = self._features.get(frame)
        if f is None:
            array = self._source.frame(frame)
            f = self._encoder.encode_arrays([array]).tracker_features()
            self._features[frame] = f
        return f

    def _keep_features(self, *frames: int) -> None:
        """Keep the features of ``frames`` and of frames with pending prompts; drop the others."""
        keep = set(frames)
        for g in self._groups:
            for pend in g.pending:
                keep.update(pend)
        for f in list(self._features):
            if f not in keep:
                del self._features[f]

    def _fallback(self, obj_id: int, frame: int) -> Optional[Fallback]:
        rec = self._results.get(frame, obj_id)
        if rec is None:
            return None
        low = torch.from_numpy(self._results.low_res_mask(frame, obj_id))
        return Fallback(low_res=low, object_score=rec.object_score, iou=rec.iou)

    # ------------------------------------------------------------------ prompts
    def add_prompt(self, frame: int, obj_id: Optional[int] = None, points: Any = None, point_labels: Any = None,
                   box: Any = None, mask: Any = None, *, clear_old_points: bool = False) -> FrameResult:
        """Prompt one object on one frame: a new object (an unused ``obj_id``, or None for the next free id) or a
        refinement of an existing one.

        Args:
            frame: frame index.
            obj_id: the object's id (int >= 0); None creates a new object with the next free id.
            points: (N, 2) pixel (x, y) of the frame; point_labels: (N,) 1 foreground, 0 background (default 1).
            box: (4,) pixel xyxy. A box goes before the clicks and replaces the object's earlier clicks on this
                frame.
            mask: (H, W) bool at the frame's size; not together with points or a box. The mask is the object's
                output on this frame.
            clear_old_points: replace the object's earlier clicks on this frame instead of adding to them (the
                clicks of one frame accumulate by default; the prompt encoder reads the first 8 and the last 8).
        Returns:
            the frame's ``FrameResult`` for every object of the session (objects with no output on this frame
            have an empty mask and score 0).
        """
        self._check_usable()
        f = frame_index(frame, self.num_frames)
        h, w = self.frame_size
        if mask is not None and (points is not None or box is not None):
            raise InputError("give either a mask or points/box in one add_prompt call, not both")
        if mask is None and points is None and box is None:
            if point_labels is not None:
                raise InputError("point_labels were given without points")
            raise InputError("add_prompt needs points, a box or a mask")
        if not isinstance(clear_old_points, (bool, np.bool_)):
            raise InputError(f"clear_old_points must be True or False, got {clear_old_points!r}")
        pts = labels = bx = msk = None
        if mask is not None:
            if point_labels is not None:
                raise InputError("point_labels were given without points")
            msk = frame_mask(mask, self.frame_size)
        else:
            if points is not None:
                p = P.check_points(points, w, h)
                labels = torch.from_numpy(P.check_labels(point_labels, p.shape[0], name="point_labels"))
                pts = self._transform.points_to_model(p)
            elif point_labels is not None:
                raise InputError("point_labels were given without points")
            if box is not None:
                bx = self._transform.boxes_to_model(P.check_boxes(box, w, h, name="box", single=True))
            if pts is None:
                pts, labels = torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64)
        oid = self._next_id if obj_id is None else object_id(obj_id)
        feats = self._frame_features(f)  # reads the frame: a frame the source cannot serve raises here
        with torch.inference_mode():
            group, row = self._group_and_row(oid)
            if msk is not None:
                group.add_mask(row, f, msk, feats)
            else:
                group.add_points(row, f, pts, labels, bx, feats, clear_old_points=bool(clear_old_points),
                                 fallback=self._fallback)
            logits, scores, known = group.outputs_at_video_size(f, h, w)
            logits = finish(logits, non_overlap=self.options.non_overlap_output, hole_area=self.options.fill_hole_area)
            lr = self._tracker.prompt_encoder.mask_input_size
            for r, obj in enumerate(group.object_ids):
                if known[r] and group.pending[r].get(f) is not None:
                    p = group.pending[r][f]
                    if p.low_res is not None:
                        low = p.low_res[0, 0]
                    else:  # a mask prompt: the low-resolution mask its consolidation will use
                        big = torch.where(p.video_mask, -NO_OBJECT_SCORE, NO_OBJECT_SCORE).float()[None, None]
                        low = F.interpolate(big, size=(lr, lr), mode="bilinear", align_corners=False,
                                            antialias=True)[0, 0]
                    self._store(f, obj, logits[r, 0], low, float(p.object_score.reshape(-1)[0]),
                                float(p.iou.reshape(-1)[0]))
            result = self._frame_result(f, {oid: (logits[r, 0], scores[r]) for r, oid in enumerate(group.object_ids)
                                            if known[r]})
        if self._next_id <= oid:
            self._next_id = oid + 1
        self._keep_features(f)
        return result

    def _group_and_row(self, oid: int) -> tuple[TrackGroup, int]:
        g = self._group_of.get(oid)
        if g is not None:
            return g, g.row(oid)
        open_group = self._groups[-1] if self._groups and not self._groups[-1].started else None
        if open_group is None:
            o = self.options
            open_group = TrackGroup(self._tracker, self._policy, storage=self._storage,
                                    clear_around_prompts=o.clear_memory_around_prompts, max_points=o.max_points,
                                    bounded=o.bounded_memory)
            self._groups.append(open_group)
        self._group_of[oid] = open_group
        return open_group, open_group.add_object(oid)

    # ------------------------------------------------------------------ results
    def _store(self, frame: int, obj_id: int, logits: Tensor, low_res: Tensor, object_score: float,
               iou: float) -> None:
        self._results.put_logits(frame, obj_id, logits, low_res, object_score, iou)

    def _frame_result(self, frame: int, computed: dict[int, tuple[Tensor, Tensor]]) -> FrameResult:
        """``computed``: obj id -> ((H, W) logits, object-score logit) of the objects just computed; the others
        from the store."""
        return self._results.combine(frame, self.object_ids, computed, self.frame_size,
                                     with_logits=self.options.return_logits)

    def result(self, frame: int) -> FrameResult:
        """The latest result of a frame already produced (by a propagation or a prompt), read back from the
        compact store (``mask_logits`` is None). Objects without a result on that frame have an empty mask and
        score 0. ``InputError`` for a frame not produced yet."""
        self._check_open()
        f = frame_index(frame, self.num_frames)
        if not self._results.has_frame(f):
            raise InputError(f"frame {f} has no result yet: propagate() over it or add a prompt on it first")
        h, w = self.frame_size
        return self._results.frame_result(f, self.object_ids, h, w)

    @property
    def frames_with_results(self) -> list[int]:
        """Frames that ``result`` can return, in order."""
        return self._results.frames

    # ------------------------------------------------------------------ objects
    def remove_object(self, obj_id: int) -> None:
        """Remove an object, its prompts and its results (official ``remove_object``: the objects tracked with it
        keep their memories; frames only it prompted stop being conditioning frames)."""
        self._check_usable()
        oid = object_id(obj_id)
        g = self._group_of.get(oid)
        if g is None:
            raise InputError(f"there is no object {oid}; objects: {self.object_ids}")
        with torch.inference_mode():
            if not g.remove_row(g.row(oid)):
                self._groups.remove(g)
        del self._group_of[oid]
        self._results.drop_object(oid)
        self._keep_features()

    # ------------------------------------------------------------------ propagation
    def propagate(self, start: Optional[int] = None, direction: str = "both",
                  max_frames: Optional[int] = None) -> Iterator[FrameResult]:
        """Track every object through the video, one ``FrameResult`` per frame, each frame once, in propagation
        order.

        Args:
            start: first frame; default the earliest prompted frame of the session.
            direction: "forward" (start .. last frame), "backward" (start .. 0) or "both" (forward, then backward
                from start - 1).
            max_frames: frames to track beyond ``start`` in each direction (the official
                ``max_frame_num_to_track``: forward yields start .. start + max_frames); default all.
        Returns:
            an iterator; the prompts are consolidated (and their memories encoded) when ``propagate`` is called,
            the frames are computed as the iterator is advanced. The session cannot change while it runs.

        With "both", the backward pass starts again at ``start`` as the official predictor does: a start frame that
        no object has a prompt on is computed again backwards (its stored result then is the backward one); it
        is yielded once, by the forward pass.
        """
        self._check_usable()
        if direction not in DIRECTIONS:
            raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
        s = None if start is None else frame_index(start, self.num_frames, "start")
        if max_frames is not None and (isinstance(max_frames, (bool, np.bool_)) or not isinstance(
                max_frames, (int, np.integer)) or max_frames < 0):
            raise InputError(f"max_frames must be an int >= 0 or None, got {max_frames!r}")
        groups = [g for g in self._groups if g.has_prompts]
        if not groups:
            raise InputError("nothing to track: add a prompt (add_prompt) before propagate()")
        with torch.inference_mode():
            for g in groups:
                g.preflight(self._frame_features, self.num_frames, fallback=self._fallback)
        if s is None:
            s = min(min(g.conditioning_frames) for g in groups)
        self._keep_features(s)
        return self._run(groups, s, direction, max_frames)

    def _passes(self, s: int, direction: str, max_frames: Optional[int]) -> list[tuple[bool, Iterator[int]]]:
        n = self.num_frames
        mx = max_frames if max_frames is not None else (n if n is not None else None)
        passes = []
        if direction in ("both", "forward"):
            if n is None:
                end = None if mx is None else s + mx
            else:
                end = min(s + mx, n - 1)
            passes.append((False, iter(range(s, end + 1)) if end is not None else _count(s)))
        if direction in ("both", "backward"):
            mxb = mx if mx is not None else s
            end = max(s - mxb, 0)
            passes.append((True, iter(range(s, end - 1, -1)) if s > 0 else iter([0])))
        return passes

    def _run(self, groups: list[TrackGroup], s: int, direction: str,
             max_frames: Optional[int]) -> Iterator[FrameResult]:
        self._propagating = True
        try:
            yielded: set[int] = set()
            for reverse, frames in self._passes(s, direction, max_frames):
                extra = ((s, True),) if direction == "both" and not reverse else ()
                for t in frames:
                    try:
                        result = self._step(groups, t, reverse, extra, emit=t not in yielded)
                    except EndOfVideo:
                        break
                    if t not in yielded:
                        yielded.add(t)
                        yield result
        finally:
            self._propagating = False
            if not self._closed:
                self._keep_features()

    def _step(self, groups: list[TrackGroup], t: int, reverse: bool, extra: tuple,
              emit: bool) -> Optional[FrameResult]:
        """Track frame t in every group, store the results; the ``FrameResult`` when ``emit``."""
        with torch.inference_mode():
            feats = self._frame_features(t)
            self._keep_features(t)
            h, w = self.frame_size
            o = self.options
            computed = {}
            for g in groups:
                low, obj = g.track(t, reverse, feats, self.num_frames)
                logits = to_frame_size(low, h, w, non_overlap=o.non_overlap_output, hole_area=o.fill_hole_area)
                mem = g.bank.get(t)
                for r, oid in enumerate(g.object_ids):
                    iou = float(mem.iou.reshape(len(g), -1)[r, 0])
                    self._store(t, oid, logits[r, 0], low[r, 0], float(obj[r, 0]), iou)
                    computed[oid] = (logits[r, 0], obj[r, 0])
                g.frontier[reverse] = t - 1 if reverse else t + 1
                g.trim(extra, self.num_frames)
            return self._frame_result(t, computed) if emit else None


def _count(start: int) -> Iterator[int]:
    i = start
    while True:
        yield i
        i += 1
