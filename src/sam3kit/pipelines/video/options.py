"""``VideoOptions``: the knobs of video tracking. The defaults are those of the tracker in the released SAM 3
video model (the official ``build_tracker(apply_temporal_disambiguation=True)``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ...errors import InputError
from .concepts.options import ConceptTrackOptions


@dataclass(frozen=True)
class VideoOptions:
    """How a ``VideoSession`` tracks and what it returns.

    memory_selection: choose the non-conditioning memories (and pointers) of a frame among the recent frames whose
        tracking score (object presence x predicted IoU) exceeds ``selection_threshold`` (the SAM2Long frame filter;
        official ``use_memory_selection``, on in the released video model). False: the last 6 frames and 15 pointers.
    selection_threshold: the score a frame needs to be selected (official ``mf_threshold``).
    return_logits: also return ``mask_logits`` (N, H, W) float32 at the frame's size in every ``FrameResult``.
    fill_hole_area: fill background holes and remove foreground specks of at most this many pixels of the frame
        in the output masks (official ``fill_hole_area``; 0 = off, as in the released tracker).
    non_overlap_output: let each pixel of an output belong to one object only, the one with the highest logit
        among the objects tracked together (official ``non_overlap_masks_for_output``; off in the release).
        The memories of prompted frames are always encoded from non-overlapping masks, as in the official code.
    max_points: clicks of one object on one frame that reach the prompt encoder: beyond this many, the first
        ``max_points // 2`` and the last ``max_points - max_points // 2``; 0 = all (official
        ``max_point_num_in_prompt_enc``).
    max_conditioning_frames: prompted frames a frame attends to at most, the temporally closest ones (official
        ``max_cond_frames_in_attn``).
    clear_memory_around_prompts: for an object tracked alone, forget its per-object outputs within 7 frames of a
        prompted frame when that frame is consolidated or propagation passes it, as the official predictor does
        (``clear_non_cond_mem_around_input``). In the official code (and here) this forgets the previous low-
        resolution logits that a later click on those frames would reuse; the memory that tracking reads stays.
    bounded_memory: keep only what tracking can still read (the prompted frames' memories, the last memories and
        pointers the bank can select from, near every prompted frame and the ends of the latest propagations)
        plus compact run-length encoded results: the session's memory stays flat however long the video. False
        keeps every frame's memory, pointer and low-resolution logits as the official predictor does (memory then
        grows with the video); only a propagation that starts in the middle of an already tracked stretch, or a
        refinement click far from every prompted frame and propagation end, can tell the two apart.
    offload: keep memories and stored logits in CPU memory when the model runs on a GPU (moved to the GPU when a
        frame reads them); no effect on the CPU.
    concepts: the heuristics of concept detect-and-track (``VideoSession.add_concept``); default the released
        model's. The tracker knobs above apply to the objects concepts find too.
    """

    memory_selection: bool = True
    selection_threshold: float = 0.01
    return_logits: bool = False
    fill_hole_area: int = 0
    non_overlap_output: bool = False
    max_points: int = 16
    max_conditioning_frames: int = 4
    clear_memory_around_prompts: bool = True
    bounded_memory: bool = True
    offload: bool = False
    concepts: ConceptTrackOptions = field(default_factory=ConceptTrackOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.concepts, ConceptTrackOptions):
            raise InputError(f"VideoOptions.concepts must be a ConceptTrackOptions, got {type(self.concepts).__name__}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(v, (bool, np.bool_)):
                    raise InputError(f"VideoOptions.{f.name} must be True or False, got {v!r}")
            elif f.type in ("int", int):
                if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                    raise InputError(f"VideoOptions.{f.name} must be an int >= 0, got {v!r}")
        try:
            t = float(self.selection_threshold)
        except (TypeError, ValueError) as e:
            raise InputError(f"VideoOptions.selection_threshold must be a number, got "
                             f"{self.selection_threshold!r}") from e
        if not np.isfinite(t):
            raise InputError(f"VideoOptions.selection_threshold must be finite, got {self.selection_threshold!r}")
        if self.max_conditioning_frames < 2:
            raise InputError(f"VideoOptions.max_conditioning_frames must be >= 2 (the closest prompted frame before "
                             f"and after), got {self.max_conditioning_frames}")
        if self.max_points == 1:
            raise InputError("VideoOptions.max_points must be 0 (no limit) or >= 2 (first and last clicks)")
