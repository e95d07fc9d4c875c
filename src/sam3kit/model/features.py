"""Typed containers passed between the stateless modules. Shapes use B = batch, d = model width, g = grid side
(72 at release), so the three neck levels are 4g, 2g and g (288, 144, 72)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from torch import Tensor


@dataclass
class DetectorImageFeatures:
    """Detector-neck output of one image batch.

    fpn: three levels [(B, d, 4g, 4g), (B, d, 2g, 2g), (B, d, g, g)].
    pos: (d, g, g) sine position map of the g x g level (the only level whose position is read).
    encoder_start: (B, g*g, d) the image tokens after the DETR encoder's first self-attention
        (``Detector.with_image_terms``), or None: then every prompt computes it.
    seg_terms: the prompt-independent part of the segmentation head's pixel decoder for these levels
        ([(B, d, 2g, 2g), (B, d, 4g, 4g)], ``Detector.with_image_terms``), or None: then every prompt computes it.
    """

    fpn: list[Tensor]
    pos: Tensor
    encoder_start: Optional[Tensor] = None
    seg_terms: Optional[list[Tensor]] = None


@dataclass
class TrackerImageFeatures:
    """Tracker-neck output, ready for the SAM mask decoder.

    embed: (B, d, g, g) the g x g level (without the no-memory embedding; the caller adds what it needs).
    high_res: [(B, d/8, 4g, 4g) after ``conv_s0``, (B, d/4, 2g, 2g) after ``conv_s1``] (``Tracker.image_features``
        stores them channels-last in memory, the layout the mask decoder reads).
    dense_pe: (1, d, g, g) position encoding of the grid (``Tracker.dense_pe``), kept so that prompts do not
        recompute it; None = computed on use.
    """

    embed: Tensor
    high_res: list[Tensor]
    dense_pe: Optional[Tensor] = None


@dataclass
class ImageFeatures:
    """Everything computed once per image batch and reused by every prompt."""

    detector: Optional[DetectorImageFeatures] = None
    tracker: Optional[TrackerImageFeatures] = None


@dataclass
class TextFeatures:
    """Encoded prompt text: features (B, L, d) after the 1024->d resizer; padding_mask (B, L) bool, True = pad."""

    features: Tensor
    padding_mask: Tensor


@dataclass
class DetectorOutput:
    """Raw detector outputs for B prompts over Q queries (normalised coordinates of the model input).

    logits: (B, Q) class logits (dot-product score, clamped to +-12).
    presence_logit: (B,) image-level presence logit (not clamped, as in the official model).
    boxes: (B, Q, 4) normalised xyxy.
    mask_logits: (B, Q, 4g, 4g) or None when not requested.
    semantic_logits: (B, 1, 4g, 4g) or None when not requested.
    queries: (B, Q, d) last-layer normed query states.
    """

    logits: Tensor
    presence_logit: Tensor
    boxes: Tensor
    mask_logits: Optional[Tensor]
    semantic_logits: Optional[Tensor]
    queries: Tensor


@dataclass
class TrackerOutput:
    """SAM mask-decoder outputs for B prompt sets.

    mask_logits: (B, M, 4g, 4g) low-resolution logits (M = 3 with multimask, else 1).
    iou_scores: (B, M) predicted IoU (sigmoid output).
    object_score_logit: (B, 1) object-presence logit.
    mask_tokens: (B, M, d) output mask tokens (for the object pointer).
    """

    mask_logits: Tensor
    iou_scores: Tensor
    object_score_logit: Tensor
    mask_tokens: Tensor


@dataclass
class MemoryPrompt:
    """What one video frame attends to in the memory attention, for B objects tracked together.

    spatial: F memory maps (B, memory_dim, g, g), in attention order (conditioning frames first). Any floating
        dtype (the video pipeline stores them in bfloat16, as the official predictor does); they enter the
        attention in the dtype of the image features.
    spatial_tpos: F indices into ``Tracker.memory_temporal_positional_encoding`` (``num_maskmem - 1`` for a
        conditioning frame, ``t_rel - 1`` for the memory of the frame ``t_rel`` steps behind).
    pointers: (P, B, d) object pointers, or None.
    pointer_offsets: P signed frame distances of the pointers (their temporal position).
    pointer_scale: the offsets are divided by ``pointer_scale - 1`` before their sine encoding (official
        ``min(num_frames, max_obj_ptrs_in_encoder)``).
    """

    spatial: list[Tensor]
    spatial_tpos: list[int]
    pointers: Optional[Tensor] = None
    pointer_offsets: Optional[list[int]] = None
    pointer_scale: int = 16


@dataclass
class SamHeadsOutput:
    """The tracker's SAM heads on one video frame for B objects (official ``_forward_sam_heads``).

    low_res_multimasks: (B, M, 4g, 4g) float32 logits, ``NO_OBJECT_SCORE`` where the object score is <= 0.
    high_res_multimasks: (B, M, S, S) float32 logits, bilinear upsampling of the low-resolution ones.
    iou_scores: (B, M) predicted IoU.
    low_res_masks: (B, 1, 4g, 4g) the best mask (highest IoU with multimask, else the only one).
    high_res_masks: (B, 1, S, S) the best mask at the model input size.
    pointer: (B, d) object pointer (``no_object_pointer`` where the object score is <= 0).
    object_score_logit: (B, 1).
    """

    low_res_multimasks: Tensor
    high_res_multimasks: Tensor
    iou_scores: Tensor
    low_res_masks: Tensor
    high_res_masks: Tensor
    pointer: Tensor
    object_score_logit: Tensor


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in ``obj`` (a tensor, list, tuple or dataclass of them), each storage counted once."""
    seen: set[int] = set()
    total = 0

    def walk(x) -> None:
        nonlocal total
        if isinstance(x, Tensor):
            key = x.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += x.untyped_storage().nbytes()
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name))

    walk(obj)
    return total
