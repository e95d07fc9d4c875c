"""``TrackGroup``: objects tracked together, as one inference state of the official ``Sam3TrackerPredictor``.

The objects of a group share their conditioning frames (a frame prompted for one object is a conditioning frame
of all of them, the others entering with their previous output on that frame or as absent), their memory-
selection scores (averaged over the objects) and the non-overlap constraint applied to a prompted frame's masks
before they are encoded as memory. Tracking runs the B objects as one batch.

Life of a prompt (official ``add_new_points_or_box`` / ``add_new_mask`` then ``propagate_in_video_preflight``):
    1. ``add_points`` / ``add_mask`` run the SAM heads on the frame without memory (clicks: with the object's
       previous low-resolution logits on that frame as mask prompt; a mask: used directly as the output) and keep
       the result as a *pending* output of that object on that frame. No memory is encoded yet.
    2. ``preflight`` (when propagation starts) consolidates the pending outputs of each prompted frame over the
       group's objects, applies the non-overlap constraint at the model input size and encodes the frame's
       memory from the binarised masks; the frame becomes a conditioning frame.
    3. ``track`` computes a non-prompted frame from the memory bank (all objects at once) and encodes its memory.

Per-object copies. The official predictor also keeps per-object copies of every frame's outputs, which it reads
for a click's previous logits and for the outputs of the other objects when a frame is consolidated; for an object
tracked alone it forgets those copies within 7 frames of a prompted frame (``clear_non_cond_mem_around_input``).
Here the copies are the bank's rows, with a per-object set of frames whose copy is forgotten (``_forgotten``); for
frames the bounded bank no longer holds, the session's stored result stands in (``fallback``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ...model.features import SamHeadsOutput, TrackerImageFeatures
from ...model.tracker.tracker import BOX_LABELS, LOW_RES_LOGIT_CLAMP, Tracker
from ...model.tracker.video_step import (MEMORY_DTYPE, NO_OBJECT_SCORE, condition_on_memory, mask_as_output,
                                         no_memory_features, non_overlapping, sam_heads)
from .memory_bank import FrameMemory, MemoryBank, MemoryPolicy, selection_score

MULTIMASK_MAX_POINTS = 1
"""Three candidate masks (the best kept) for 0 or 1 clicks, during tracking too (released tracker:
``multimask_output_in_sam``, ``multimask_min_pt_num=0``, ``multimask_max_pt_num=1``,
``multimask_output_for_tracking``); a box counts as two points."""


def use_multimask(num_points: int) -> bool:
    """Whether the SAM heads return three masks for a prompt of ``num_points`` points (box corners included)."""
    return num_points <= MULTIMASK_MAX_POINTS


CLEAR_RADIUS = 7
"""Frames around a prompted frame whose per-object copies are forgotten (official ``num_maskmem`` x stride 1)."""
ABSENT_SCORE = 10.0
"""Object-score logit the official consolidation gives an object without any output on a prompted frame."""
RECENT_OUTPUTS = 16
"""Tracked frames per direction whose outputs stay for a refinement click (the latest ones)."""
PROXY_LOGIT = 10.0
"""Stand-in low-resolution logits (+-) from a stored binary mask when the bank no longer holds the logits."""


@dataclass
class Pending:
    """An object's output on a frame from a prompt, before consolidation (official temporary output).

    low_res: (1, 1, 4g, 4g) float32 logits (clicks), or None (mask prompts: the output is ``video_mask``).
    video_mask: (H, W) bool prompt mask at the frame's size (mask prompts), or None.
    pointer: (1, d); object_score: (1, 1); iou: (1,) best predicted IoU.
    """

    low_res: Optional[Tensor]
    video_mask: Optional[Tensor]
    pointer: Tensor
    object_score: Tensor
    iou: Tensor

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.low_res, self.video_mask, self.pointer,
                                                           self.object_score, self.iou) if t is not None)


@dataclass
class Fallback:
    """What the session still knows of an object's output on a frame the bank dropped (from its stored result):
    low_res: (4g, 4g) bool mask; object_score: logit; iou."""

    low_res: Tensor
    object_score: float
    iou: float


FallbackFn = Callable[[int, int], Optional[Fallback]]
"""(object id, frame) -> the stored stand-in, or None."""


@dataclass
class Slice:
    """One object's output on one frame (official per-object output)."""

    low_res: Optional[Tensor]  # (1, 1, 4g, 4g)
    pointer: Optional[Tensor]  # (1, d) or None (a stand-in without a pointer)
    object_score: Tensor       # (1, 1)
    iou: Tensor                # (1,) or (1, 1)


class TrackGroup:
    """Objects tracked together (see the module docstring).

    Args:
        tracker: the model's tracker.
        policy: memory sizes and selection.
        storage: device of the stored memories and logits (CPU with ``VideoOptions.offload``).
        clear_around_prompts: ``VideoOptions.clear_memory_around_prompts``.
        max_points: ``VideoOptions.max_points``.
        bounded: ``VideoOptions.bounded_memory``.
    """

    def __init__(self, tracker: Tracker, policy: MemoryPolicy, *, storage: torch.device, clear_around_prompts: bool,
                 max_points: int, bounded: bool) -> None:
        self.tracker = tracker
        self.policy = policy
        self.storage = storage
        self.clear_around_prompts = clear_around_prompts
        self.max_points = max_points
        self.bounded = bounded
        self.restart_at_prompts = True  # a later propagation may start next to any prompted frame (see ``queries``)
        self.object_ids: list[int] = []
        self.points: list[dict[int, tuple[Tensor, Tensor]]] = []  # per object: frame -> ((1, N, 2), (1, N))
        self.masks: list[dict[int, Tensor]] = []                  # per object: frame -> (H, W) bool prompt
        self.pending: list[dict[int, Pending]] = []
        self._forgotten: list[set[int]] = []
        self.bank = MemoryBank(policy)
        self.started = False
        self.frontier: dict[bool, Optional[int]] = {False: None, True: None}
        self.recent: dict[bool, deque] = {False: deque(maxlen=RECENT_OUTPUTS), True: deque(maxlen=RECENT_OUTPUTS)}

    # ------------------------------------------------------------------ objects
    def __len__(self) -> int:
        return len(self.object_ids)

    def add_object(self, obj_id: int) -> int:
        """A new object (only before tracking started, as in the official predictor); returns its row."""
        assert not self.started, "a group takes new objects only before its first propagation"
        self.object_ids.append(obj_id)
        for lst in (self.points, self.masks, self.pending):
            lst.append({})
        self._forgotten.append(set())
        return len(self.object_ids) - 1

    def row(self, obj_id: int) -> int:
        return self.object_ids.index(obj_id)

    @property
    def has_prompts(self) -> bool:
        return bool(self.bank.cond) or any(self.pending)

    @property
    def conditioning_frames(self) -> list[int]:
        return list(self.bank.cond)

    @property
    def nbytes(self) -> int:
        n = self.bank.nbytes + sum(p.nbytes for d in self.pending for p in d.values())
        n += sum(c.numel() * c.element_size() + lab.numel() * lab.element_size()
                 for d in self.points for c, lab in d.values())
        n += sum(m.numel() * m.element_size() for d in self.masks for m in d.values())
        return n

    # ------------------------------------------------------------------ per-object copies
    def object_output(self, row: int, frame: int, fallback: Optional[FallbackFn] = None) -> Optional[Slice]:
        """The object's kept output on a frame (conditioning first, then tracked unless forgotten), else the
        stand-in of a dropped frame."""
        m = self.bank.cond.get(frame)
        if m is None and frame not in self._forgotten[row]:
            m = self.bank.non_cond.get(frame)
        if m is not None and m.low_res is not None:
            r = slice(row, row + 1)
            return Slice(m.low_res[r], m.pointer[r], m.object_score[r], m.iou[r])
        if frame in self._forgotten[row] or fallback is None:
            return None
        fb = fallback(self.object_ids[row], frame)
        if fb is None:
            return None
        dev = self.tracker.no_object_pointer.device
        low = torch.where(fb.low_res.to(dev), PROXY_LOGIT, -PROXY_LOGIT).float()[None, None]
        pointer = None if m is None else m.pointer[row:row + 1]
        return Slice(low, pointer, torch.tensor([[fb.object_score]], device=dev), torch.tensor([fb.iou], device=dev))

    def _refresh(self, frame: int) -> None:
        """A new output of every object on ``frame``: their copies exist again."""
        for s in self._forgotten:
            s.discard(frame)

    def _forget_around(self, frame: int) -> None:
        """For an object tracked alone: forget its tracked-frame copies within ``CLEAR_RADIUS`` of ``frame``
        (its conditioning frames keep theirs; a later output of a frame brings its copy back)."""
        if not (self.clear_around_prompts and len(self) <= 1):
            return
        for s in self._forgotten:
            s.update(range(frame - CLEAR_RADIUS, frame + CLEAR_RADIUS + 1))

    # ------------------------------------------------------------------ prompts
    def add_points(self, row: int, frame: int, points: Tensor, labels: Tensor, box: Optional[Tensor],
                   features: TrackerImageFeatures, *, clear_old_points: bool,
                   fallback: Optional[FallbackFn] = None) -> Pending:
        """Clicks and/or a box on a frame for one object (official ``add_new_points_or_box``).

        Args:
            points: (N, 2) model-input pixels (x, y) (N may be 0), labels (N,) 1 / 0.
            box: (4,) model-input pixels xyxy or None; a box goes first and replaces the frame's earlier clicks.
            clear_old_points: replace this object's earlier clicks on the frame instead of adding to them.
        Returns:
            the pending output.
        """
        dev = features.embed.device
        coords = points.float().reshape(1, -1, 2).to(dev)
        labs = labels.long().reshape(1, -1).to(dev)
        if box is not None:
            coords = torch.cat([box.float().reshape(1, 2, 2).to(dev), coords], dim=1)
            labs = torch.cat([torch.tensor([BOX_LABELS], device=dev), labs], dim=1)
        old = None if (clear_old_points or box is not None) else self.points[row].get(frame)
        if old is not None:
            coords, labs = torch.cat([old[0], coords], dim=1), torch.cat([old[1], labs], dim=1)
        if coords.shape[1] > self.max_points > 0:  # the official code keeps the shortened list as the history
            first, last = self.max_points // 2, self.max_points - self.max_points // 2
            coords = torch.cat([coords[:, :first], coords[:, -last:]], dim=1)
            labs = torch.cat([labs[:, :first], labs[:, -last:]], dim=1)
        self.points[row][frame] = (coords, labs)
        self.masks[row].pop(frame, None)
        prev = self._previous_logits(row, frame, fallback)
        heads = sam_heads(self.tracker, no_memory_features(self.tracker, features.embed), features, coords, labs,
                          prev, multimask=use_multimask(coords.shape[1]))
        out = Pending(low_res=heads.low_res_masks.to(self.storage), video_mask=None, pointer=heads.pointer,
                      object_score=heads.object_score_logit, iou=heads.iou_scores.max(dim=-1).values)
        self.pending[row][frame] = out
        return out

    def _previous_logits(self, row: int, frame: int, fallback: Optional[FallbackFn]) -> Optional[Tensor]:
        p = self.pending[row].get(frame)
        if p is not None:
            low = p.low_res  # None after a mask prompt on this frame: no previous logits, as officially
        else:
            s = self.object_output(row, frame, fallback)
            low = None if s is None else s.low_res
        if low is None:
            return None
        return low.to(self.tracker.no_object_pointer.device).clamp(-LOW_RES_LOGIT_CLAMP, LOW_RES_LOGIT_CLAMP)

    def add_mask(self, row: int, frame: int, mask: Tensor, features: TrackerImageFeatures) -> Pending:
        """A mask prompt (H, W) bool at the frame's size for one object (official ``add_new_mask``): the output is
        the mask itself; the other objects' pending mask prompts on this frame lose the overlap."""
        dev = features.embed.device
        side = self.tracker.config.grid_size * self.tracker.config.mask_downsampler_total_stride  # 16g
        m = mask.to(dev).float()[None, None]
        if tuple(m.shape[-2:]) != (side, side):
            m = F.interpolate(m, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        return self._mask_prompt(row, frame, mask.to(self.storage, torch.bool), m, features)

    def add_model_mask(self, row: int, frame: int, mask: Tensor, features: TrackerImageFeatures,
                       frame_size: tuple[int, int]) -> Pending:
        """A mask prompt (16g, 16g) bool at the memory encoder's input size (a detection's mask, official
        ``add_new_mask`` of a 1152 x 1152 mask): the frame-size mask is its antialiased resize > 0.5."""
        dev = features.embed.device
        m = mask.to(dev).float()[None, None]
        h, w = frame_size
        video = m if tuple(m.shape[-2:]) == (h, w) else F.interpolate(
            m, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return self._mask_prompt(row, frame, (video[0, 0] > 0.5).to(self.storage), m, features)

    def _mask_prompt(self, row: int, frame: int, video_mask: Tensor, model_mask: Tensor,
                     features: TrackerImageFeatures) -> Pending:
        heads: SamHeadsOutput = mask_as_output(self.tracker, features, model_mask)
        self.masks[row][frame] = video_mask
        self.points[row].pop(frame, None)
        out = Pending(low_res=None, video_mask=video_mask, pointer=heads.pointer,
                      object_score=heads.object_score_logit, iou=heads.iou_scores.max(dim=-1).values)
        self.pending[row][frame] = out
        for other, pend in enumerate(self.pending):
            q = pend.get(frame)
            if other != row and q is not None and q.video_mask is not None:
                q.video_mask = q.video_mask & ~video_mask
        return out

    def outputs_at_video_size(self, frame: int, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
        """Every object's current output on a prompted frame, at the frame's size (official consolidation at
        video resolution, which the add calls return): the pending output, else the kept one.

        Returns:
            logits (B, 1, H, W) float32 (``NO_OBJECT_SCORE`` where unknown), object-score logits (B,), and which
            objects have an output here that the group holds (B,) bool (the caller fills the others from its
            stored results).
        """
        b = len(self)
        dev = self.tracker.no_object_pointer.device
        logits = torch.full((b, 1, height, width), NO_OBJECT_SCORE, device=dev)
        scores = torch.zeros(b, device=dev)
        known = torch.zeros(b, dtype=torch.bool)
        for r in range(b):
            p = self.pending[r].get(frame)
            if p is not None and p.video_mask is not None:
                logits[r, 0] = torch.where(p.video_mask.to(dev), -NO_OBJECT_SCORE, NO_OBJECT_SCORE)
                low, score = None, p.object_score
            elif p is not None:
                low, score = p.low_res, p.object_score
            else:
                s = self.object_output(r, frame)
                if s is None:
                    continue
                low, score = s.low_res, s.object_score
            if low is not None:
                logits[r] = F.interpolate(low.to(dev).float(), size=(height, width), mode="bilinear",
                                          align_corners=False)[0]
            scores[r] = score.reshape(-1)[0]
            known[r] = True
        return logits, scores, known

    # ------------------------------------------------------------------ propagation
    def preflight(self, features_of: Callable[[int], TrackerImageFeatures], num_frames: Optional[int],
                  fallback: Optional[FallbackFn] = None, *, encode: bool = True, trim: bool = True) -> list[int]:
        """Consolidate the pending outputs into conditioning frames and encode their memories (official
        ``propagate_in_video_preflight``). Returns the frames consolidated. ``encode=False`` leaves their memory
        maps to a later ``encode_memory`` (concept re-conditioning, whose memory the frame's update replaces);
        ``trim=False`` leaves the trimming of the bank to the caller (which knows what later passes read)."""
        self.started = True
        frames_seen: set[int] = set()
        for pend in self.pending:  # the official code gathers the frames in a set, in this order
            frames_seen.update(pend.keys())
        done = []
        for frame in frames_seen:
            self._consolidate(frame, features_of(frame), fallback, encode=encode)
            done.append(frame)
        for pend in self.pending:
            pend.clear()
        for frame in self.bank.cond:
            self.bank.non_cond.pop(frame, None)
        if trim:
            self.trim(num_frames=num_frames)
        return done

    def _consolidate(self, frame: int, features: TrackerImageFeatures, fallback: Optional[FallbackFn], *,
                     encode: bool = True) -> None:
        t = self.tracker
        b, dev = len(self), features.embed.device
        lr = t.prompt_encoder.mask_input_size
        low = torch.full((b, 1, lr, lr), NO_OBJECT_SCORE, device=dev)
        pointer = t.no_object_pointer.detach().expand(b, -1).clone().to(dev)  # official "empty mask" pointer
        score = torch.full((b, 1), ABSENT_SCORE, device=dev)
        iou = torch.zeros(b, 1, device=dev)
        for r in range(b):
            p = self.pending[r].get(frame)
            if p is not None:
                if p.video_mask is not None:
                    big = torch.where(p.video_mask.to(dev), -NO_OBJECT_SCORE, NO_OBJECT_SCORE).float()[None, None]
                    low[r] = F.interpolate(big, size=(lr, lr), mode="bilinear", align_corners=False,
                                           antialias=True)[0]
                else:
                    low[r] = p.low_res.to(dev)[0]
                pointer[r], score[r], iou[r] = p.pointer[0], p.object_score[0], p.iou.reshape(-1)[0]
                continue
            s = self.object_output(r, frame, fallback)
            if s is None:
                continue
            low[r] = s.low_res.to(dev)[0]
            if s.pointer is not None:
                pointer[r] = s.pointer.to(dev)[0]
            score[r], iou[r] = s.object_score.reshape(-1)[0], s.iou.reshape(-1)[0]
        maskmem = None
        if encode:
            s_img = t.config.image_size
            high = non_overlapping(F.interpolate(low, size=(s_img, s_img), mode="bilinear", align_corners=False))
            maskmem, _ = t.encode_memory(features.embed, high, score, binarize=True)
            maskmem = maskmem.to(self.storage, MEMORY_DTYPE)
        # a re-prompted frame keeps its place in the conditioning order (it breaks ties between equally close ones)
        self.bank.cond[frame] = FrameMemory(maskmem=maskmem, pointer=pointer,
                                            object_score=score, iou=iou, low_res=low.to(self.storage), score=None)
        self._refresh(frame)
        self._forget_around(frame)

    def track(self, frame: int, reverse: bool, features: TrackerImageFeatures,
              num_frames: Optional[int]) -> tuple[Tensor, Tensor]:
        """One frame for every object of the group (official ``propagate_in_video`` step): ``propagate``, then the
        memory of a tracked frame encoded from its own masks.

        Returns:
            low-resolution logits (B, 1, 4g, 4g) float32 and object-score logits (B, 1).
        """
        low, obj, high = self._propagate(frame, reverse, features, num_frames)
        if high is not None:
            self.encode_memory(frame, high, obj, features)
        return low, obj

    def propagate(self, frame: int, reverse: bool, features: TrackerImageFeatures,
                  num_frames: Optional[int]) -> tuple[Tensor, Tensor]:
        """One frame for every object of the group without encoding its memory (official ``propagate_in_video``
        with ``run_mem_encoder=False``): a conditioning frame returns its consolidated output (and, for an object
        tracked alone, forgets the per-object copies around it); any other frame is tracked from the bank and kept
        without memory maps until ``encode_memory``.

        Returns:
            low-resolution logits (B, 1, 4g, 4g) float32 and object-score logits (B, 1).
        """
        low, obj, _ = self._propagate(frame, reverse, features, num_frames)
        return low, obj

    def _propagate(self, frame: int, reverse: bool, features: TrackerImageFeatures,
                   num_frames: Optional[int]) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        m = self.bank.cond.get(frame)
        if m is not None:
            self._forget_around(frame)
            self._refresh(frame)
            return m.low_res.to(features.embed.device), m.object_score, None
        t = self.tracker
        dev = features.embed.device
        choice = self.bank.choose(frame, reverse, num_frames)
        prompt = self.bank.prompt(choice, dev)
        b = len(self)
        if prompt.spatial or prompt.pointers is not None:
            pix = condition_on_memory(t, features.embed, prompt)
        else:  # nothing to read (a bank emptied by remove_object): as a frame without memory
            pix = no_memory_features(t, features.embed).expand(b, -1, -1, -1)
        heads = sam_heads(t, pix, features, multimask=use_multimask(0))
        iou = heads.iou_scores.max(dim=-1).values
        self.bank.non_cond[frame] = FrameMemory(
            maskmem=None, pointer=heads.pointer, object_score=heads.object_score_logit, iou=iou,
            low_res=heads.low_res_masks.to(self.storage), score=selection_score(heads.object_score_logit, iou))
        self._refresh(frame)
        self.recent[reverse].append(frame)
        return heads.low_res_masks, heads.object_score_logit, heads.high_res_masks

    def encode_memory(self, frame: int, mask_logits: Tensor, object_score: Tensor,
                      features: TrackerImageFeatures) -> None:
        """Encode the memory of a frame already in the bank from given masks (official ``_run_memory_encoder`` on
        the sigmoid path, as ``_tracker_update_memories`` and the tracking step do); it replaces the memory maps of
        that frame, conditioning or not.

        Args:
            mask_logits: (B, 1, H, W) full-resolution logits (resized to the memory encoder's input if needed).
            object_score: (B, 1) logits; where <= 0 the memory gets the occlusion embedding.
        """
        entries = [m for m in (self.bank.cond.get(frame), self.bank.non_cond.get(frame)) if m is not None]
        assert entries, f"frame {frame} is not in the bank"
        maskmem, _ = self.tracker.encode_memory(features.embed, mask_logits, object_score)
        maskmem = maskmem.to(self.storage, MEMORY_DTYPE)
        for m in entries:
            m.maskmem = maskmem
        self._refresh(frame)

    def clear_mask_frames(self, row: int, frame: int, window: int) -> list[int]:
        """Stop the frames where only a mask prompted object ``row`` (not a click), within ``window`` frames of
        ``frame``, from being conditioning frames: every object's prompt there is dropped (official
        ``clear_detector_added_cond_frame_in_tracker``, after a refinement click). Returns the frames cleared."""
        frames = [f for f in self.masks[row] if f not in self.points[row] and abs(f - frame) <= window]
        for f in frames:
            for r in range(len(self)):
                self._clear_frame(r, f)
        return frames

    def _clear_frame(self, row: int, frame: int) -> None:
        """Drop one object's prompt on a frame (official ``clear_all_points_in_frame``): a frame nobody prompts any
        more is demoted to a tracked frame, and a group left without prompted frames loses its tracking results."""
        self.points[row].pop(frame, None)
        self.masks[row].pop(frame, None)
        self.pending[row].pop(frame, None)
        if any(frame in p or frame in mk for p, mk in zip(self.points, self.masks)):
            return
        if frame in self.bank.cond:
            self.bank.non_cond[frame] = self.bank.cond.pop(frame)
            self._refresh(frame)
        if not self.bank.cond:
            self.bank = MemoryBank(self.policy)
            for lst in (self.points, self.masks, self.pending):
                for d in lst:
                    d.clear()
            self.started = False

    # ------------------------------------------------------------------ bookkeeping
    def queries(self, extra: tuple[tuple[int, bool], ...] = ()) -> list[tuple[int, bool]]:
        """The frames tracking may compute next: next to every prompted frame (unless ``restart_at_prompts`` is
        False: the groups of a concept, whose later passes the concept tracker knows, and whose re-conditioned
        frames would otherwise keep the memories around each of them), the latest propagation ends, ``extra``."""
        q = []
        if self.restart_at_prompts:
            q = [(c + 1, False) for c in self.bank.cond] + [(c - 1, True) for c in self.bank.cond]
        q += [(f, rev) for rev, f in self.frontier.items() if f is not None]
        return q + list(extra)

    def trim(self, extra: tuple[tuple[int, bool], ...] = (), num_frames: Optional[int] = None) -> None:
        """Drop from the bank what no next frame reads (only with bounded memory)."""
        if self.bounded:
            self.bank.trim(self.queries(extra), num_frames, keep_outputs=[*self.recent[False], *self.recent[True]])

    def remove_row(self, row: int) -> bool:
        """Remove one object (official ``remove_object`` with other objects left). Returns False when it was the
        group's last object (the caller drops the group)."""
        if len(self) == 1:
            return False
        for frame in set(self.points[row]) | set(self.masks[row]):
            self._clear_frame(row, frame)
        keep = [i for i in range(len(self)) if i != row]
        for store in (self.bank.cond, self.bank.non_cond):
            for f in list(store):
                store[f] = store[f].rows(keep)
        for lst in (self.object_ids, self.points, self.masks, self.pending, self._forgotten):
            del lst[row]
        return True
