"""The SAM-2-style tracker of SAM 3 (``tracker_model`` of the checkpoint): interactive single-image segmentation
(PVS) and the memory modules used for video.

The Gaussian matrix of the random-Fourier position encoding exists twice, as in transformers:
``prompt_encoder.shared_embedding`` encodes prompt coordinates (points, box corners) and
``shared_image_embedding`` the image-wide grid the mask decoder adds to the image embedding (``dense_pe``). The
official model has one matrix for both uses (``sam_prompt_encoder.pe_layer``); the released checkpoint holds two
equal copies, and a checkpoint that transformers saves from a freshly initialised model two different ones.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ...config import TrackerConfig
from ...errors import InputError
from ..features import TrackerImageFeatures, TrackerOutput
from ..layers import MLP
from .mask_decoder import MaskDecoder
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder, mask_for_memory
from .prompt_encoder import PromptEncoder, RandomFourierEmbedding

LOW_RES_LOGIT_CLAMP = 32.0
"""The official interactive predictor clamps its returned low-resolution logits to +-32."""
BOX_LABELS = (2, 3)
"""Point labels of a box's top-left and bottom-right corners."""


class Tracker(nn.Module):
    """Prompt encoder, mask decoder, memory attention, memory encoder and the tracker's learned embeddings.

    Attribute names equal the checkpoint keys ``tracker_model.*``.
    """

    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        self.config = cfg
        d, mem = cfg.hidden_size, cfg.memory_dim
        self.no_memory_embedding = nn.Parameter(torch.zeros(1, 1, d))
        # Never read, here or in the official code (its only use, a dummy memory token for a frame without memory,
        # follows an unconditional return in ``_prepare_memory_conditioned_features``); kept because both released
        # checkpoints hold it and loading and conversion are strict.
        self.no_memory_positional_encoding = nn.Parameter(torch.zeros(1, 1, d))
        # Video tracking only (``video_step.py``): the memory attention, the temporal encodings of the mask
        # memories and object pointers, and ``mask_downsample`` (a mask prompt used directly as the frame's output,
        # the official ``_use_mask_as_output``).
        self.memory_temporal_positional_encoding = nn.Parameter(torch.zeros(cfg.num_maskmem, 1, 1, mem))
        self.no_object_pointer = nn.Parameter(torch.zeros(1, d))
        self.occlusion_spatial_embedding_parameter = nn.Parameter(torch.zeros(1, mem))
        self.prompt_encoder = PromptEncoder(d, cfg.image_size, cfg.grid_size, cfg.mask_input_channels,
                                            cfg.num_point_embeddings)
        self.mask_decoder = MaskDecoder(cfg)
        self.memory_attention = MemoryAttention(cfg)
        self.memory_encoder = MemoryEncoder(cfg)
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.object_pointer_proj = MLP(d, d, d, 3, names="sam")
        self.temporal_positional_encoding_projection_layer = nn.Linear(d, mem)
        # A new tracker holds the prompt encoder's matrix itself under this name too (one matrix, as the official
        # model); loading gives each name the tensor the checkpoint holds for it.
        self.shared_image_embedding = RandomFourierEmbedding(
            d // 2, matrix=self.prompt_encoder.shared_embedding.positional_embedding)
        self.register_load_state_dict_pre_hook(_untie_gaussian_matrices)

    # ------------------------------------------------------------------ image features
    def image_features(self, fpn: list[Tensor]) -> TrackerImageFeatures:
        """Tracker features from the tracker-neck levels.

        Args:
            fpn: [(B, d, 4g, 4g), (B, d, 2g, 2g), (B, d, g, g)].
        Returns:
            TrackerImageFeatures: embed = level 2 unchanged, high_res = [conv_s0(level 0), conv_s1(level 1)].
        """
        if len(fpn) != 3:
            raise InputError(f"expected the 3 tracker-neck levels (4g, 2g, g), got {len(fpn)}")
        # high_res in channels-last memory (same shapes): the mask decoder reads them channel-innermost
        cl = torch.channels_last
        high_res = [self.mask_decoder.conv_s0(fpn[0]).contiguous(memory_format=cl),
                    self.mask_decoder.conv_s1(fpn[1]).contiguous(memory_format=cl)]
        return TrackerImageFeatures(embed=fpn[2], high_res=high_res, dense_pe=self.dense_pe().to(fpn[2].dtype))

    def dense_pe(self) -> Tensor:
        """Image-wide position encoding of the g x g grid (``shared_image_embedding``): (1, d, g, g) float32."""
        return self.shared_image_embedding.grid(self.prompt_encoder.grid_size)

    # ------------------------------------------------------------------ interactive single image (PVS)
    def predict(self, features: TrackerImageFeatures, points: Optional[Tensor] = None,
                point_labels: Optional[Tensor] = None, boxes: Optional[Tensor] = None,
                mask_input: Optional[Tensor] = None, *, multimask: bool = True,
                add_no_memory_embedding: bool = True) -> TrackerOutput:
        """Masks for B prompt sets on one image (features with batch 1) or on B images (features with batch B).

        Official single-image path (``SAM3InteractiveImagePredictor._predict``): a box becomes two points (labels
        2, 3) placed before the clicks, one padding point (label -1) is appended after the points, and without
        points or box there are no sparse tokens at all.

        Args:
            features: from ``image_features``; embed (1 or B, d, g, g).
            points: (B, N, 2) float, (x, y) pixels of the model input frame (0..S). Pad shorter click lists with
                label -1.
            point_labels: (B, N) int: 1 foreground, 0 background, 2/3 box corners, -1 padding. The values are
                not checked here (that would wait for the device); the pipelines check their prompts.
            boxes: (B, 4) float, xyxy pixels of the model input frame.
            mask_input: (B, 1, 4g, 4g) mask logits (e.g. a previous ``mask_logits`` output).
            multimask: True -> 3 masks; False -> 1 mask (mask token 0 with the stability fallback).
            add_no_memory_embedding: add ``no_memory_embedding`` to the g x g level (official single-image path).
        Returns:
            TrackerOutput: mask_logits (B, M, 4g, 4g) clamped to +-32 as the official predictor returns them,
            iou_scores (B, M), object_score_logit (B, 1) (no masking of occluded objects here), mask_tokens (B, M, d).
        """
        embed, high_res = features.embed, list(features.high_res)
        b = self._check_prompts(embed, points, point_labels, boxes, mask_input)
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2).float()  # coordinates stay fp32 whatever the model dtype
            corner_labels = torch.tensor(BOX_LABELS, device=boxes.device).expand(corners.shape[0], 2)
            if points is None:
                points, point_labels = corners, corner_labels
            else:
                points = torch.cat([corners, points.float()], dim=1)
                point_labels = torch.cat([corner_labels, point_labels.to(corner_labels.dtype)], dim=1)
        sparse, dense = self.prompt_encoder(points, point_labels, mask_input, batch_size=b, pad=True)
        if add_no_memory_embedding:
            embed = embed + self.no_memory_embedding.view(1, -1, 1, 1)
        if embed.shape[0] != b:
            embed = embed.expand(b, -1, -1, -1)
        pe = features.dense_pe if features.dense_pe is not None else self.dense_pe()
        out = self.mask_decoder(embed, pe.to(embed.dtype), sparse, dense, high_res, multimask=multimask)
        out.mask_logits = out.mask_logits.clamp(-LOW_RES_LOGIT_CLAMP, LOW_RES_LOGIT_CLAMP)
        return out

    def _check_prompts(self, embed: Tensor, points, labels, boxes, mask_input) -> int:
        """Validate the prompt shapes (never the values: no host synchronisation); return the batch size B."""
        g = self.config.grid_size
        if embed.dim() != 4 or embed.shape[1] != self.config.hidden_size or tuple(embed.shape[-2:]) != (g, g):
            raise InputError(f"features.embed must be (B, {self.config.hidden_size}, {g}, {g}), "
                             f"got {tuple(embed.shape)}")
        sizes = {}
        if points is not None:
            if labels is None:
                raise InputError("points were given without point_labels; pass (B, N) labels (1 fg, 0 bg, -1 pad)")
            if points.dim() != 3 or points.shape[-1] != 2:
                raise InputError(f"points must be (B, N, 2) (x, y) pixels, got {tuple(points.shape)}")
            if tuple(labels.shape) != tuple(points.shape[:2]):
                raise InputError(f"point_labels must be (B, N) = {tuple(points.shape[:2])}, got {tuple(labels.shape)}")
            sizes["points"] = points.shape[0]
        elif labels is not None:
            raise InputError("point_labels were given without points")
        if boxes is not None:
            if boxes.dim() != 2 or boxes.shape[-1] != 4:
                raise InputError(f"boxes must be (B, 4) xyxy pixels, got {tuple(boxes.shape)}")
            sizes["boxes"] = boxes.shape[0]
        if mask_input is not None:
            m = self.prompt_encoder.mask_input_size
            if mask_input.dim() != 4 or tuple(mask_input.shape[1:]) != (1, m, m):
                raise InputError(f"mask_input must be (B, 1, {m}, {m}) low-resolution logits, "
                                 f"got {tuple(mask_input.shape)}")
            sizes["mask_input"] = mask_input.shape[0]
        if len(set(sizes.values())) > 1:
            raise InputError(f"prompt batch sizes differ: {sizes}; give every prompt the same leading size B")
        b = next(iter(sizes.values())) if sizes else embed.shape[0]
        if embed.shape[0] not in (1, b):
            raise InputError(f"features have batch {embed.shape[0]} but the prompts have batch {b}; use features of "
                             "one image (batch 1) for several prompt sets, or one prompt set per image")
        return b

    # ------------------------------------------------------------------ memory (video)
    def object_pointer(self, mask_token: Tensor, object_score_logit: Tensor) -> Tensor:
        """Object pointer of the selected mask token (official ``_forward_sam_heads``).

        Args:
            mask_token: (B, d) the mask token of the chosen mask (best-IoU multimask token, or token 0).
            object_score_logit: (B, 1); where <= 0 the pointer is ``no_object_pointer``.
        Returns:
            (B, d).
        """
        ptr = self.object_pointer_proj(mask_token)
        present = (object_score_logit > 0).to(ptr.dtype)
        return present * ptr + (1 - present) * self.no_object_pointer

    def encode_memory(self, features: Tensor, mask_logits: Tensor, object_score_logit: Tensor, *,
                      binarize: bool = False) -> tuple[Tensor, Tensor]:
        """Encode a frame's prediction as a memory (official ``_encode_new_memory``, in fp32).

        Args:
            features: (B, d, g, g) raw tracker features of the frame (``TrackerImageFeatures.embed``).
            mask_logits: (B, 1, H, W) full-resolution mask logits (S x S at release); transformed, then resized.
            object_score_logit: (B, 1); where <= 0 the occlusion embedding is added to the memory.
            binarize: use ``logit > 0`` instead of the sigmoid (masks from clicks, at inference).
        Returns:
            memory: (B, memory_dim, g, g); pos: (1, memory_dim, g, g) sine position map.
        """
        memory = self.memory_encoder(features, mask_for_memory(mask_logits, binarize=binarize))
        occluded = (object_score_logit <= 0).to(memory.dtype).view(-1, 1, 1, 1)
        memory = memory + occluded * self.occlusion_spatial_embedding_parameter.view(1, -1, 1, 1)
        g = features.shape[-1]
        pos = self.memory_encoder.position(g, device=memory.device, dtype=memory.dtype).unsqueeze(0)
        return memory, pos


def _untie_gaussian_matrices(tracker: Tracker, *args) -> None:
    """Before ``load_state_dict``: give ``shared_image_embedding`` its own tensor if it still holds the prompt
    encoder's, so that a checkpoint with two different copies fills each name with its own values (into one shared
    tensor, the copy read last would overwrite the other)."""
    image_wide, prompts = tracker.shared_image_embedding, tracker.prompt_encoder.shared_embedding
    if image_wide.positional_embedding is prompts.positional_embedding:
        image_wide.positional_embedding = prompts.positional_embedding.clone()
