"""The concept side of a ``VideoSession``: storing a concept's outputs, click refinement of an object a concept
found, and the propagation of a session with concepts (the official ``Sam3VideoInference.propagate_in_video``:
per pass each concept runs its full detect-and-track, tracks its refined objects again, or reuses its stored
results, and the frames leave through the hot-start buffer).

Functions of the session they act on (``VideoSession`` calls them; they read and write its state), kept apart so
that ``session.py`` holds the session's life cycle, prompts and the tracker-only propagation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ...io.video import EndOfVideo
from .concepts.concept import Concept
from .concepts.outputs import OutputBuffer, PendingFrame
from .concepts.tracker import ConceptStep
from .group import TrackGroup
from .passes import concept_passes
from .postprocess import fill_holes
from .results import FrameResult

if TYPE_CHECKING:
    from .session import VideoSession


def store_step(session: VideoSession, concept: Concept, frame: int, step: ConceptStep) -> None:
    """Store a concept's outputs of one frame (masks at the frame's size: bilinear, then > 0)."""
    h, w = session.frame_size
    session._results.mark(frame)
    if not step.obj_ids:
        return
    video = F.interpolate(step.low_res[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)
    video = (video[:, 0] > 0).cpu().numpy()
    low = (step.low_res > 0).cpu().numpy()
    for k, oid in enumerate(step.obj_ids):
        session._results.put(frame, oid, video[k], low[k], (0.0, 0.0, 0.0, 0.0), concept.scores.get(oid, 0.0),
                          step.object_scores[k], step.ious[k], concept=concept.index,
                          priority=step.priority[k])


def refine(session: VideoSession, concept: Concept, oid: int, f: int, pts: Optional[Tensor],
           labels: Optional[Tensor], box: Optional[Tensor], mask: Optional[Tensor],
           clear_old_points: bool) -> FrameResult:
    """Clicks (or a box or mask) on an object found by a concept (official instance interactivity): the
    object's tracker state gets the prompt on frame ``f`` (a conditioning frame), the frames where only a
    detection prompted it within ``refinement_detector_cond_frame_removal_window`` stop being conditioning
    frames, and the next propagation tracks its state again (tracker only) in each direction."""
    if not session._results.has_frame(f):
        raise InputError(f"object {oid} has no result on frame {f} yet: refine it on a frame the propagation "
                         f"(or add_concept) has produced")
    h, w = session.frame_size
    o = session.options.concepts
    feats = session._frame_features(f)
    g = concept.group_of(oid)
    row = g.row(oid)
    with torch.inference_mode():
        if mask is not None:
            pend = g.add_mask(row, f, mask, feats)
        else:
            pend = g.add_points(row, f, pts, labels, box, feats, clear_old_points=clear_old_points,
                                fallback=session._fallback)
        logits, _, _ = g.outputs_at_video_size(f, h, w)
        video = fill_holes(logits[row:row + 1].float(), o.fill_hole_area)[0, 0] > 0
        lr = session._tracker.prompt_encoder.mask_input_size
        if pend.low_res is not None:
            low = pend.low_res[0, 0] > 0
        else:
            low = F.interpolate(pend.video_mask.float()[None, None], size=(lr, lr), mode="bilinear",
                                align_corners=False, antialias=True)[0, 0] > 0.5
        g.preflight(session._frame_features, session.num_frames, fallback=session._fallback, trim=False)
        g.clear_mask_frames(row, f, o.refinement_detector_cond_frame_removal_window)
        session._concepts.trim(concept, session.num_frames)
    concept.scores[oid] = 1.0
    for rev in (False, True):
        if not concept.full_pending[rev]:
            concept.refined[rev].add(oid)
    session._results.put(f, oid, video.cpu().numpy(), low.cpu().numpy(), (0.0, 0.0, 0.0, 0.0), 1.0,
                      float(pend.object_score.reshape(-1)[0]), float(pend.iou.reshape(-1)[0]),
                      concept=concept.index, priority=1.0)
    session._keep_features(f)
    return session._concept_result(f)


def propagate(session: VideoSession, groups: list[TrackGroup], s: Optional[int], direction: str,
              max_frames: Optional[int]) -> Iterator[FrameResult]:
    """``VideoSession.propagate`` of a session with concepts: the default start (the earliest frame of a concept
    still to propagate, or of a prompted object), then ``run``."""
    if s is None:
        starts = [c.prompt.frame for c in session._concepts.concepts if any(c.full_pending.values())]
        starts += [min(g.conditioning_frames) for g in groups]
        if not starts and session._results.frames:
            starts = [session._results.frames[0]]
        s = min(starts) if starts else 0
    session._keep_features(s)
    return run(session, groups, s, direction, max_frames)


def run(session: VideoSession, groups: list[TrackGroup], s: int, direction: str,
        max_frames: Optional[int]) -> Iterator[FrameResult]:
    """The propagation of a session with concepts: per pass, each concept runs the full detect-and-track (its
    first pass in that direction), tracks its refined objects again, or reuses its stored results; the frames
    are released by the hot-start buffer."""
    session._propagating = True
    co = session.options.concepts
    try:
        for reverse, frames, last in concept_passes(s, direction, max_frames, session.num_frames):
            modes = {}
            for c in session._concepts.concepts:
                if c.full_pending[reverse]:
                    modes[c.index] = "full"
                    c.full_pending[reverse] = False
                    c.refined[reverse].clear()
                elif c.refined[reverse]:
                    modes[c.index] = "partial"
                else:
                    modes[c.index] = "fetch"
            full = "full" in modes.values()
            buf = OutputBuffer(delay=co.hotstart_delay if full else 0, reverse=reverse,
                               confirmation_lag=co.masklet_confirmation_consecutive_det_thresh - 1,
                               num_frames=session.num_frames)
            try:
                for t in frames:
                    try:
                        pending, unconfirmed = compute_frame(session, groups, t, reverse, modes)
                    except EndOfVideo:
                        break
                    session._unreleased.add(t)
                    for item in buf.push(pending, unconfirmed, last=t == last):
                        yield release(session, item, buf, modes)
                for item in buf.flush():
                    yield release(session, item, buf, modes)
            finally:
                if session._concepts is not None:  # not closed meanwhile
                    for item in buf.flush():  # an iteration stopped early: what it computed stays consistent
                        hide(session, item, buf, modes)
                    for c in session._concepts.concepts:
                        if modes.get(c.index) == "partial":
                            c.refined[reverse].clear()
                session._unreleased.clear()
    finally:
        session._propagating = False
        if not session._closed:
            session._keep_features()


def compute_frame(session: VideoSession, groups: list[TrackGroup], t: int, reverse: bool,
                   modes: dict[int, str]) -> tuple[PendingFrame, Optional[set[int]]]:
    """Compute frame t for every group and concept; returns what the buffer needs."""
    concepts = session._concepts.concepts
    detecting = [c for c in concepts if modes[c.index] == "full" and c.prompt.detects_on(t)
                 and (c.index, t) not in session._prompt_detections]
    busy = groups or any(modes[c.index] != "fetch" for c in concepts)
    pending = PendingFrame(t)
    unconfirmed: Optional[set[int]] = None
    if not busy:  # every concept reuses its results: nothing to compute
        if not session._results.has_frame(t) and session.num_frames is None:
            raise EndOfVideo(f"frame {t}: no result beyond the frames this stream has produced")
        for c in concepts:
            pending.suppressed |= c.book.suppressed.get(t, set())
        return pending, None
    with torch.inference_mode():
        if detecting:
            feats, det = session._frame_encodings(t)
        else:
            feats, det = session._frame_features(t), None
        session._keep_features(t)
        session._track_groups(groups, t, reverse, feats)
        session._results.mark(t)
        h, w = session.frame_size
        for c in concepts:
            mode = modes[c.index]
            if mode == "full":
                dets = session._prompt_detections.pop((c.index, t), None)
                if dets is None:
                    dets = session._concepts.detect(c, t, det)
                step = session._concepts.step(c, t, reverse, dets, feats, num_frames=session.num_frames,
                                           features_of=session._frame_features, fallback=session._fallback,
                                           new_ids=session._take_ids)
                store_step(session, c, t, step)
                pending.suppressed |= step.suppressed
                if step.unconfirmed is not None:
                    unconfirmed = (unconfirmed or set()) | step.unconfirmed
            elif mode == "partial":
                for oid, low, logit, iou in session._concepts.track_refined(c, t, reverse, feats, session.num_frames):
                    video = F.interpolate(low[None, None], size=(h, w), mode="bilinear", align_corners=False)
                    # official partial propagation: the refined object's frame-wise tracker score is its raw
                    # object-score logit (the others keep their stored ones)
                    session._results.put(t, oid, (video[0, 0] > 0).cpu().numpy(), (low > 0).cpu().numpy(),
                                      (0.0, 0.0, 0.0, 0.0), c.scores.get(oid, 1.0), logit, iou,
                                      concept=c.index, priority=logit)
                pending.suppressed |= c.book.suppressed.get(t, set())
            else:
                pending.suppressed |= c.book.suppressed.get(t, set())
            session._concepts.trim(c, session.num_frames)
    return pending, unconfirmed


def release(session: VideoSession, item: PendingFrame, buf: OutputBuffer, modes: dict[int, str]) -> FrameResult:
    """A frame leaves the hot-start buffer: the objects hidden on it (those the hot start has removed from the
    concepts running their full pass, the ones suppressed there, the unconfirmed ones) leave its stored results
    for good (official ``_cache_frame_outputs``), then it is reported."""
    hide(session, item, buf, modes)
    return session._concept_result(item.frame)


def hide(session: VideoSession, item: PendingFrame, buf: OutputBuffer, modes: dict[int, str]) -> None:
    t = item.frame
    hidden = item.suppressed | buf.unconfirmed_at(t)
    for c in session._concepts.concepts:
        if modes.get(c.index) == "full":
            hidden |= c.book.removed
    for oid in hidden:
        if oid not in session._group_of:
            session._results.drop(t, oid)
    session._unreleased.discard(t)
