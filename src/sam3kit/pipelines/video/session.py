"""``VideoSession``: prompts, propagation and results on one video (``VideoPredictor.start``).

A session holds the frame source (frames are decoded when asked for and not kept), the features of the few frames
it still needs, one ``TrackGroup`` per set of objects tracked together, and the compact results of every frame it
has produced. Objects prompted before the first propagation form one group, as the objects of one official
``Sam3TrackerPredictor`` inference state; an object first prompted after a propagation starts a new group (the
official predictor refuses new objects once tracking has started; SAM 3's video model likewise gives each object
clicked later a tracker state of its own). All groups step through the same frames in the same order.

Concepts (``add_concept``: a text and/or exemplar boxes) are detected and tracked by the official detect-and-track
algorithm (``concepts.ConceptTracker``, with the heuristics of ``VideoOptions.concepts``): each concept keeps its own
tracker states (groups) and bookkeeping; ids are shared with the objects of ``add_prompt`` and never reused. A
propagation then steps every concept and every group through the same frames, and the frames are reported after the
hot-start delay; ``concept_run.py`` holds that propagation, the storing of a concept's outputs and the click
refinement of the objects a concept found.

Coordinates are pixels of the original frame: points (x, y), boxes xyxy; masks are (H, W) bool at the frame's
size. Results are ``FrameResult``; a frame produced once can be read again with ``result(frame)``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ...io.video import EndOfVideo, FrameSource
from ...model.features import DetectorImageFeatures, TrackerImageFeatures, tensor_bytes
from ...model.sam3 import Sam3Model
from ...model.tracker.video_step import NO_OBJECT_SCORE
from .. import prompts as P
from ..coords import ImageTransform
from ..encoding import ImageEncoder
from ..text import TextFeatureCache
from . import concept_run
from .concepts.concept import ConceptPrompt
from .concepts.detections import Detections
from .concepts.outputs import assemble
from .concepts.tracker import ConceptTracker
from .group import Fallback, TrackGroup
from .memory_bank import MAX_POINTER_FRAMES, MemoryPolicy
from .options import VideoOptions
from .passes import tracker_passes
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
                 owns_source: bool = True, texts: Optional[TextFeatureCache] = None) -> None:
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
        self._detector_features: dict[int, DetectorImageFeatures] = {}
        self._texts: Optional[TextFeatureCache] = texts
        self._concepts: Optional[ConceptTracker] = None
        self._prompt_detections: dict[tuple[int, int], Detections] = {}  # (concept, frame) -> its add_concept dets
        self._created: list[int] = []  # every object id, in creation order
        self._unreleased: set[int] = set()  # frames computed but still held by the hot-start buffer
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
        """The objects of the session, in the order they were created (objects removed by ``remove_object`` or by
        the concept heuristics are gone)."""
        alive = set(self._group_of)
        if self._concepts is not None:
            alive.update(self._concepts.object_ids)
        return [oid for oid in self._created if oid in alive]

    @property
    def num_concepts(self) -> int:
        """The concepts added (``add_concept``), in order: their indexes are 0 .. num_concepts - 1."""
        return 0 if self._concepts is None else len(self._concepts.concepts)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def memory_bytes(self) -> int:
        """Bytes the session holds: memories, pointers and logits of the memory bank, pending prompt outputs,
        the tracker and detector features of the frames it still needs (tensors sharing a storage counted once),
        and the compact stored results (the frame source's small window of decoded frames is not counted)."""
        n = sum(g.nbytes for g in self._groups) + self._results.nbytes
        if self._concepts is not None:
            n += self._concepts.nbytes
        return n + tensor_bytes([list(self._features.values()), list(self._detector_features.values())])

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
        self._detector_features.clear()
        self._concepts = None
        self._prompt_detections.clear()
        self._created.clear()
        self._unreleased.clear()
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

    def _frame_encodings(self, frame: int) -> tuple[TrackerImageFeatures, DetectorImageFeatures]:
        """Both necks of a frame from one ViT pass (the detector's are dropped with the frame's other features)."""
        d = self._detector_features.get(frame)
        if d is None:
            state = self._encoder.encode_arrays([self._source.frame(frame)])
            d = self._detector_features[frame] = state.detector_features()
            if frame not in self._features:
                self._features[frame] = state.tracker_features()
        feats = self._features.get(frame)
        return (feats if feats is not None else self._frame_features(frame)), d

    def _keep_features(self, *frames: int) -> None:
        """Keep the features of ``frames`` and of frames with pending prompts; drop the others."""
        keep = set(frames)
        for g in self._groups:
            for pend in g.pending:
                keep.update(pend)
        for f in list(self._features):
            if f not in keep:
                del self._features[f]
        for f in list(self._detector_features):
            if f not in frames:
                del self._detector_features[f]

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
        if self._concepts is not None:
            why = self._concepts.removed.get(oid)
            if why is not None:
                raise InputError(f"object {oid} was {why}: ids are never reused; refine another object or add a new "
                                 "one (obj_id=None)")
            concept = self._concepts.owner(oid)
            if concept is not None:
                return concept_run.refine(self, concept, oid, f, pts, labels, bx, msk, bool(clear_old_points))
        feats = self._frame_features(f)  # reads the frame: a frame the source cannot serve raises here
        if oid not in self._group_of:
            self._created.append(oid)
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
            if self._concepts is None:
                result = self._frame_result(f, {oid: (logits[r, 0], scores[r])
                                                for r, oid in enumerate(group.object_ids) if known[r]})
            else:
                result = self._concept_result(f)
        if self._next_id <= oid:
            self._next_id = oid + 1
        self._keep_features(f)
        return result

    def _new_group(self) -> TrackGroup:
        o = self.options
        return TrackGroup(self._tracker, self._policy, storage=self._storage,
                          clear_around_prompts=o.clear_memory_around_prompts, max_points=o.max_points,
                          bounded=o.bounded_memory)

    def _group_and_row(self, oid: int) -> tuple[TrackGroup, int]:
        g = self._group_of.get(oid)
        if g is not None:
            return g, g.row(oid)
        open_group = self._groups[-1] if self._groups and not self._groups[-1].started else None
        if open_group is None:
            open_group = self._new_group()
            self._groups.append(open_group)
        self._group_of[oid] = open_group
        return open_group, open_group.add_object(oid)

    # ------------------------------------------------------------------ results
    def _store(self, frame: int, obj_id: int, logits: Tensor, low_res: Tensor, object_score: float,
               iou: float) -> None:
        self._results.put_logits(frame, obj_id, logits, low_res, object_score, iou)

    def _frame_result(self, frame: int, computed: dict[int, tuple[Tensor, Tensor]],
                      on_host: Optional[dict[int, tuple[np.ndarray, float]]] = None) -> FrameResult:
        """``computed``: obj id -> ((H, W) logits, object-score logit) of the objects just computed (``on_host``:
        their masks and scores already copied, ``ResultStore.put_logits_batch``); the others from the store."""
        return self._results.combine(frame, self.object_ids, computed, self.frame_size,
                                     with_logits=self.options.return_logits, on_host=on_host)

    def result(self, frame: int) -> FrameResult:
        """The latest result of a frame already produced (by a propagation or a prompt), read back from the
        compact store (``mask_logits`` is None). Objects without a result on that frame have an empty mask and
        score 0 (in a session with concepts, as ``FrameResult`` says: found objects are listed where shown).
        ``InputError`` for a frame not produced yet (or still held by the hot-start buffer)."""
        self._check_open()
        f = frame_index(frame, self.num_frames)
        if not self._results.has_frame(f) or f in self._unreleased:
            raise InputError(f"frame {f} has no result yet: propagate() over it or add a prompt on it first")
        if self._concepts is not None:
            return self._concept_result(f, with_logits=False)
        h, w = self.frame_size
        return self._results.frame_result(f, self.object_ids, h, w)

    def _concept_result(self, frame: int, *, with_logits: Optional[bool] = None) -> FrameResult:
        """A frame's result in a session with concepts, from the stored (not yet non-overlapping) results:
        ``concepts.outputs.assemble`` with every concept object's current score."""
        recs = self._results.records(frame)
        for c in self._concepts.concepts:
            for oid in set(recs) & set(c.scores):
                recs[oid] = replace(recs[oid], score=c.scores[oid])
        wl = self.options.return_logits if with_logits is None else with_logits
        return assemble(frame, recs, self._created, set(self._group_of), self.frame_size, with_logits=wl)

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
        if self._concepts is not None and g is None:
            why = self._concepts.removed.get(oid)
            if why is not None:
                raise InputError(f"object {oid} was already {why}")
            if self._concepts.owner(oid) is not None:
                with torch.inference_mode():
                    self._concepts.remove(oid, "removed by remove_object")
                self._results.drop_object(oid, keep_frames=True)
                self._keep_features()
                return
        if g is None:
            raise InputError(f"there is no object {oid}; objects: {self.object_ids}")
        with torch.inference_mode():
            if not g.remove_row(g.row(oid)):
                self._groups.remove(g)
        del self._group_of[oid]
        self._results.drop_object(oid, keep_frames=self._concepts is not None)
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

        In a session with concepts (``add_concept``) the official detect-and-track runs instead (official
        ``Sam3VideoInference.propagate_in_video``): the default start is the earliest frame of a concept still to
        propagate (or of a prompted object), the backward pass starts at ``start - 1``, and every frame goes
        through the hot-start buffer: frame t is yielded once frame t + ``hotstart_delay`` - 1 has been computed
        (the end of the pass, or of a stream, yields the rest), so that the objects the hot start removes are
        never reported. A concept runs its full detect-and-track once per direction; later propagations track
        again only the objects refined by clicks since (tracker only) and report the stored results of the
        others, as the official code does ("partial" and "fetch" propagations). Objects of ``add_prompt`` are
        tracked as without concepts.
        """
        self._check_usable()
        if direction not in DIRECTIONS:
            raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
        s = None if start is None else frame_index(start, self.num_frames, "start")
        if max_frames is not None and (isinstance(max_frames, (bool, np.bool_)) or not isinstance(
                max_frames, (int, np.integer)) or max_frames < 0):
            raise InputError(f"max_frames must be an int >= 0 or None, got {max_frames!r}")
        groups = [g for g in self._groups if g.has_prompts]
        if not groups and self._concepts is None:
            raise InputError("nothing to track: add a prompt (add_prompt) or a concept (add_concept) before "
                             "propagate()")
        with torch.inference_mode():
            for g in groups:
                g.preflight(self._frame_features, self.num_frames, fallback=self._fallback)
        if self._concepts is not None:
            return concept_run.propagate(self, groups, s, direction, max_frames)
        if s is None:
            s = min(min(g.conditioning_frames) for g in groups)
        self._keep_features(s)
        return self._run(groups, s, direction, max_frames)

    def _run(self, groups: list[TrackGroup], s: int, direction: str,
             max_frames: Optional[int]) -> Iterator[FrameResult]:
        self._propagating = True
        try:
            yielded: set[int] = set()
            for reverse, frames in tracker_passes(s, direction, max_frames, self.num_frames):
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
            computed, on_host = self._track_groups(groups, t, reverse, feats, extra)
            return self._frame_result(t, computed, on_host) if emit else None

    def _track_groups(self, groups: list[TrackGroup], t: int, reverse: bool, feats: TrackerImageFeatures,
                      extra: tuple = ()) -> tuple[dict[int, tuple[Tensor, Tensor]], dict]:
        """Track frame t in every group (the tracker's memory and pointers of t added) and store each object's
        result; returns {object id: (mask logits at the frame's size, object score)} and {object id: (mask,
        score) on the host}. A group's results are copied to the host once for all its objects (a device
        synchronisation per copy, not per object). ``extra``: conditioning frames the groups' trimming must keep
        (``TrackGroup.trim``)."""
        h, w = self.frame_size
        o = self.options
        computed, on_host = {}, {}
        for g in groups:
            low, obj = g.track(t, reverse, feats, self.num_frames)
            logits = to_frame_size(low, h, w, non_overlap=o.non_overlap_output, hole_area=o.fill_hole_area)
            mem = g.bank.get(t)
            ids = list(g.object_ids)
            iou = mem.iou.reshape(len(g), -1)[:, 0]
            on_host.update(self._results.put_logits_batch(t, ids, logits[:, 0], low[:, 0], obj[:, 0], iou))
            for r, oid in enumerate(ids):
                computed[oid] = (logits[r, 0], obj[r, 0])
            g.frontier[reverse] = t - 1 if reverse else t + 1
            g.trim(extra, self.num_frames)
        return computed, on_host

    # ------------------------------------------------------------------ concepts
    def add_concept(self, frame: int, text: Optional[str] = None, boxes: Any = None, box_labels: Any = None, *,
                    truncate_text: bool = False) -> FrameResult:
        """Detect every instance of a concept on one frame; ``propagate`` then detects and tracks it through the
        video (the official SAM 3 detect-and-track, with the heuristics of ``VideoOptions.concepts``).

        Args:
            frame: the frame to detect on first (and the frame of the exemplars).
            text: a noun phrase ("a red car"); None with exemplar boxes only.
            boxes: (K, 4) pixel xyxy exemplar boxes on ``frame`` (the official video model takes K = 1). The
                detector reads them on that frame and, as the official detector computes one frame ahead, on the
                first detection of the next frame; elsewhere it reads the text. Without a text, new objects appear
                on that frame only.
            box_labels: (K,) 1 = positive exemplar, 0 = negative; default all positive.
            truncate_text: cut a text longer than the model's context instead of raising ``InputError``.
        Returns:
            the frame's ``FrameResult`` (every object of the session; ``concepts`` tells which concept found each).
        The concept's index is the number of concepts added before it. Several concepts may be added; each tracks
        its own objects (association and the heuristics act within a concept), ids are shared and never reused.
        """
        self._check_usable()
        f = frame_index(frame, self.num_frames)
        if not isinstance(truncate_text, (bool, np.bool_)):
            raise InputError(f"truncate_text must be True or False, got {truncate_text!r}")
        if text is None and boxes is None:
            if box_labels is not None:
                raise InputError("box_labels were given without boxes")
            raise InputError("add_concept needs a text, exemplar boxes, or both")
        if text is not None:
            text = P.check_text(text)
        bx = lab = None
        if boxes is not None:
            h, w = self.frame_size
            b = P.check_boxes(boxes, w, h, name="boxes")
            labels = P.check_labels(box_labels, b.shape[0], name="box_labels")
            bx = self._transform.boxes_to_detector(b)[None].float()
            lab = torch.from_numpy(labels)[None]
        elif box_labels is not None:
            raise InputError("box_labels were given without boxes")
        if self._texts is None:
            self._texts = TextFeatureCache(self._model)
        if self._concepts is None:
            tracker = ConceptTracker(self._model, self._texts, self._new_group, self.options.concepts,
                                     self.frame_size)
        else:
            tracker = self._concepts
        feats, det = self._frame_encodings(f)  # reads the frame: a frame the source cannot serve raises here
        with torch.inference_mode():
            concept = tracker.add(ConceptPrompt(text=text, frame=f, boxes=bx, box_labels=lab),
                                  truncate_text=bool(truncate_text))
            self._concepts = tracker
            dets = tracker.detect(concept, f, det)
            self._prompt_detections[(concept.index, f)] = dets
            step = tracker.step(concept, f, False, dets, feats, num_frames=self.num_frames,
                                features_of=self._frame_features, fallback=self._fallback, new_ids=self._take_ids)
            concept_run.store_step(self, concept, f, step)
            tracker.trim(concept, self.num_frames)
            result = self._concept_result(f)
        self._keep_features(f)
        return result

    def _take_ids(self, n: int) -> list[int]:
        """n fresh object ids (the next free ones; never reused)."""
        ids = list(range(self._next_id, self._next_id + n))
        self._next_id += n
        self._created.extend(ids)
        return ids
