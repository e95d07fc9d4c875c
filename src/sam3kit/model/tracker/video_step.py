"""The tracker's per-frame video computations, stateless: tensors in, tensors out (official ``Sam3TrackerBase``).

- ``condition_on_memory``: the frame's g x g features attend to the memories of other frames (spatial memories
  with their sine and temporal position encodings, object pointers split into ``d / memory_dim`` tokens with
  their projected 1-D sine temporal encoding) through the memory attention.
- ``sam_heads``: prompt encoder and mask decoder on (memory-conditioned) features; the best mask, its object
  pointer, and the low-resolution masks of an absent object (object score <= 0) set to ``NO_OBJECT_SCORE``.
- ``mask_as_output``: a mask prompt used directly as the frame's output (logits +-10), with its pointer from the
  SAM heads run on the downsampled mask.
- ``pointer_positions``: the temporal encoding of object pointers.
The memory encoder is ``Tracker.encode_memory``; which memories a frame reads is the video pipeline's business.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ..features import MemoryPrompt, SamHeadsOutput, TrackerImageFeatures
from ..position import sine_position_2d
from .prompt_encoder import PAD_LABEL
from .tracker import Tracker

NO_OBJECT_SCORE = -1024.0
"""Low-resolution logit of every pixel of an object that is absent on a frame (official ``NO_OBJ_SCORE``)."""
MASK_OUTPUT_SCALE = 20.0
"""A mask prompt used as output becomes logits ``mask * 20 - 10`` (sigmoid(-10) = 4.5e-5)."""
MASK_OUTPUT_BIAS = -10.0
MEMORY_DTYPE = torch.bfloat16
"""Memories are kept in bfloat16 between frames, as the official predictor keeps them (and computed in fp32)."""


def no_memory_features(tracker: Tracker, embed: Tensor) -> Tensor:
    """Features of a frame that reads no memory: ``embed + no_memory_embedding`` (B, d, g, g)."""
    return embed + tracker.no_memory_embedding.view(1, -1, 1, 1).to(embed.dtype)


def sine_1d(positions: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """1-D sine encoding (P,) -> (P, dim): ``[sin(p / t_i) | cos(p / t_i)]`` concatenated (not interleaved), with
    ``t_i = temperature ** (2 * (i // 2) / (dim / 2))`` for i < dim / 2; fp32."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float32, device=positions.device)
    t = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / half)
    p = positions.float()[:, None] / t
    return torch.cat([p.sin(), p.cos()], dim=-1)


def pointer_positions(tracker: Tracker, offsets: list[int], scale: int) -> Tensor:
    """Temporal encoding of P object pointers (official ``_get_tpos_enc``): (P, memory_dim).

    Args:
        offsets: signed frame distance of each pointer from the current frame.
        scale: ``min(num_frames, max pointers)``; the offsets are divided by ``scale - 1`` first.
    """
    layer = tracker.temporal_positional_encoding_projection_layer
    pos = torch.tensor(offsets, dtype=torch.float32, device=layer.weight.device) / (scale - 1)
    return layer(sine_1d(pos, tracker.config.hidden_size).to(layer.weight.dtype))


def memory_tokens(tracker: Tracker, prompt: MemoryPrompt, *, dtype: torch.dtype) -> tuple[Tensor, Tensor, int]:
    """The memory-attention keys/values of a ``MemoryPrompt``.

    Returns:
        memory: (B, F*g*g + P*k, memory_dim) spatial tokens (frames in order, each row-major) then pointer tokens
            (k = d / memory_dim tokens per pointer, the pointer's channels split in order);
        pos: (B or 1, same, memory_dim) sine position + temporal encoding of each spatial memory, then the pointer
            temporal encoding repeated for the k tokens of its pointer;
        num_pointer_tokens: P * k.
    """
    cfg = tracker.config
    d, mem = cfg.hidden_size, cfg.memory_dim
    if not prompt.spatial and prompt.pointers is None:
        raise InputError("a memory prompt needs at least one spatial memory or object pointer")
    tpos_table = tracker.memory_temporal_positional_encoding  # (num_maskmem, 1, 1, mem)
    tokens, pos = [], []
    if prompt.spatial:
        if len(prompt.spatial_tpos) != len(prompt.spatial):
            raise InputError(f"{len(prompt.spatial)} spatial memories but {len(prompt.spatial_tpos)} temporal "
                             "indices")
        g = prompt.spatial[0].shape[-1]
        sine = tracker.memory_encoder.position(g, device=tpos_table.device).flatten(1).t()  # (g*g, mem) fp32
        for m, ti in zip(prompt.spatial, prompt.spatial_tpos):
            tokens.append(m.to(dtype).flatten(2).transpose(1, 2))  # (B, g*g, mem)
            pos.append((sine + tpos_table[ti].view(1, mem)).to(dtype).unsqueeze(0))
    n_ptr = 0
    if prompt.pointers is not None:
        ptrs = prompt.pointers  # (P, B, d)
        p, b = ptrs.shape[:2]
        if prompt.pointer_offsets is None or len(prompt.pointer_offsets) != p:
            raise InputError(f"{p} object pointers need {p} pointer_offsets")
        ppos = pointer_positions(tracker, prompt.pointer_offsets, prompt.pointer_scale).to(dtype)  # (P, mem)
        k = d // mem if mem < d else 1
        if mem < d:  # pointer j -> tokens (j, 0), (j, 1), ... (j, k - 1), each of memory_dim channels
            ptrs = ptrs.reshape(p, b, k, mem).permute(1, 0, 2, 3).reshape(b, p * k, mem)
            ppos = ppos.repeat_interleave(k, dim=0)
        else:
            ptrs = ptrs.transpose(0, 1)
        tokens.append(ptrs.to(dtype))
        pos.append(ppos.unsqueeze(0))
        n_ptr = p * k
    b = tokens[0].shape[0]
    return torch.cat(tokens, dim=1), torch.cat([x.expand(b, -1, -1) for x in pos], dim=1), n_ptr


def condition_on_memory(tracker: Tracker, embed: Tensor, prompt: MemoryPrompt) -> Tensor:
    """Memory-conditioned features of one frame (official ``_prepare_memory_conditioned_features``, frames that
    read memory).

    Args:
        embed: (1 or B, d, g, g) the frame's raw g x g tracker features (batch 1: shared by the B objects).
        prompt: the memories of the B objects.
    Returns:
        (B, d, g, g).
    """
    memory, pos, n_ptr = memory_tokens(tracker, prompt, dtype=embed.dtype)
    g = embed.shape[-1]
    image_pos = sine_position_2d(g, g, embed.shape[1], device=embed.device, dtype=embed.dtype).unsqueeze(0)
    return tracker.memory_attention(embed, memory, pos, pos=image_pos, num_pointer_tokens=n_ptr)


def sam_heads(tracker: Tracker, pix_feat: Tensor, features: TrackerImageFeatures, points: Optional[Tensor] = None,
              labels: Optional[Tensor] = None, mask_input: Optional[Tensor] = None, *,
              multimask: bool) -> SamHeadsOutput:
    """The SAM heads of a video frame (official ``_forward_sam_heads``).

    Unlike the single-image path, a frame without points still gets one padding point (label -1) before the
    prompt encoder appends its own, so the decoder always sees at least two "not a point" tokens.

    Args:
        pix_feat: (B, d, g, g) memory-conditioned features (or raw features + ``no_memory_embedding``).
        features: the frame's tracker features (``high_res`` of batch 1 or B, ``dense_pe``).
        points: (B, N, 2) model-input pixels (x, y) with ``labels`` (B, N) (box corners first, labels 2 and 3).
        mask_input: (B, 1, h, w) mask logits; resized (bilinear, antialias) to 4g x 4g when needed.
        multimask: three masks (the best by IoU is chosen) or one (with the stability fallback).
    Returns:
        ``SamHeadsOutput`` (fp32 masks).
    """
    b, dev = pix_feat.shape[0], pix_feat.device
    if points is None:
        points = torch.zeros(b, 1, 2, device=dev)
        labels = torch.full((b, 1), PAD_LABEL, dtype=torch.int64, device=dev)
    m = tracker.prompt_encoder.mask_input_size
    if mask_input is not None and tuple(mask_input.shape[-2:]) != (m, m):
        mask_input = F.interpolate(mask_input.float(), size=(m, m), mode="bilinear", align_corners=False,
                                   antialias=True)
    sparse, dense = tracker.prompt_encoder(points, labels, mask_input, batch_size=b, pad=True)
    pe = features.dense_pe if features.dense_pe is not None else tracker.dense_pe()
    high_res = [f if f.shape[0] == b else f.expand(b, -1, -1, -1) for f in features.high_res]
    out = tracker.mask_decoder(pix_feat, pe.to(pix_feat.dtype), sparse, dense, high_res, multimask=multimask)
    obj = out.object_score_logit.float()
    present = obj > 0  # (B, 1)
    low = torch.where(present[:, :, None, None], out.mask_logits.float(), torch.full_like(out.mask_logits.float(),
                                                                                          NO_OBJECT_SCORE))
    s = tracker.config.image_size
    high = F.interpolate(low, size=(s, s), mode="bilinear", align_corners=False)
    iou = out.iou_scores.float()
    token = out.mask_tokens[:, 0]
    if multimask:
        best = iou.argmax(dim=-1)
        rows = torch.arange(b, device=dev)
        low_best, high_best = low[rows, best].unsqueeze(1), high[rows, best].unsqueeze(1)
        token = out.mask_tokens[rows, best]
    else:
        low_best, high_best = low, high
    pointer = tracker.object_pointer(token, out.object_score_logit)
    return SamHeadsOutput(low_res_multimasks=low, high_res_multimasks=high, iou_scores=iou, low_res_masks=low_best,
                          high_res_masks=high_best, pointer=pointer, object_score_logit=obj)


def mask_as_output(tracker: Tracker, features: TrackerImageFeatures, mask: Tensor) -> SamHeadsOutput:
    """A mask prompt used as the frame's output (official ``_use_mask_as_output``).

    Args:
        features: the frame's tracker features (raw ``embed``, no memory and no no-memory embedding).
        mask: (B, 1, 16g, 16g) float in [0, 1] (the prompt resized to the memory encoder's input size).
    Returns:
        ``SamHeadsOutput`` with M = 1: logits ``mask * 20 - 10`` (high_res at 16g; low_res downsampled with
        antialias to ``16g // patch * 4``, as the official code computes it), IoU 1, object score +10 where the
        mask has any pixel else -10, and the pointer of the SAM heads run on ``mask_downsample(mask)`` (or
        ``no_object_pointer`` for an empty mask).
    """
    mask = mask.float()
    high = mask * MASK_OUTPUT_SCALE + MASK_OUTPUT_BIAS
    side = mask.shape[-1] // tracker.config.patch_size * 4
    low = F.interpolate(high, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    b = mask.shape[0]
    embed = features.embed if features.embed.shape[0] == b else features.embed.expand(b, -1, -1, -1)
    dense_prompt = tracker.mask_downsample(mask.to(tracker.mask_downsample.weight.dtype))
    heads = sam_heads(tracker, embed, features, mask_input=dense_prompt, multimask=False)
    present = (mask.flatten(1) > 0).any(dim=1, keepdim=True).float()  # (B, 1)
    obj = MASK_OUTPUT_SCALE * present + MASK_OUTPUT_BIAS
    pointer = present * heads.pointer + (1 - present) * tracker.no_object_pointer
    return SamHeadsOutput(low_res_multimasks=low, high_res_multimasks=high, iou_scores=mask.new_ones(b, 1),
                          low_res_masks=low, high_res_masks=high, pointer=pointer, object_score_logit=obj)


def non_overlapping(logits: Tensor) -> Tensor:
    """Keep, at each pixel, only the object with the highest logit (official ``_apply_non_overlapping_constraints``):
    the others are clamped to at most -10. (B, 1, H, W) -> same; B = 1 unchanged."""
    if logits.shape[0] <= 1:
        return logits
    winner = logits.argmax(dim=0, keepdim=True)
    own = torch.arange(logits.shape[0], device=logits.device).view(-1, 1, 1, 1)
    return torch.where(winner == own, logits, logits.clamp(max=MASK_OUTPUT_BIAS))

