"""The detector's segmentation head: per-query instance masks and a semantic map at the finest neck level."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import SegHeadConfig
from ..errors import InputError
from ..ops.conv import conv3x3_after_upsample2x
from .layers import MLP, Attention


class PixelDecoder(nn.Module):
    """Top-down FPN: ``y = ReLU(GroupNorm_k(Conv3x3_k(feat + nearest_upsample(y))))`` from coarse to fine.

    ``num_upsampling_stages`` conv/norm pairs are declared (3 at release) but only ``len(levels) - 1`` run
    (2 for the three neck levels); the unused ones are kept so the checkpoint loads strictly.

    The convolution is linear, so it splits into ``Conv_k(feat)``, which depends on the image only
    (``image_terms``: computed once per image and reused by every prompt), and ``Conv_k(upsample(y))`` without
    bias, computed at the coarse resolution (``conv3x3_after_upsample2x``): with the terms given, a prompt does
    45 % of the convolution work of the direct form, which runs when they are not.
    """

    def __init__(self, hidden_size: int, num_stages: int) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(nn.Conv2d(hidden_size, hidden_size, 3, padding=1) for _ in range(num_stages))
        self.norms = nn.ModuleList(nn.GroupNorm(8, hidden_size) for _ in range(num_stages))

    def image_terms(self, levels: list[Tensor]) -> list[Tensor]:
        """levels: the fine neck levels [(B, d, 4g, 4g), (B, d, 2g, 2g)] -> ``Conv_k(level)`` (bias included),
        in the order the stages run (coarse to fine): [(B, d, 2g, 2g), (B, d, 4g, 4g)]."""
        self._check_stages(len(levels))
        return [self.conv_layers[k](feat) for k, feat in enumerate(reversed(levels))]

    def _check_stages(self, fine_levels: int) -> None:
        if fine_levels > len(self.conv_layers):
            raise InputError(f"{fine_levels + 1} neck levels need {fine_levels} pixel-decoder stages, the head has "
                             f"{len(self.conv_layers)}")

    def forward(self, levels: list[Tensor], terms: Optional[list[Tensor]] = None) -> Tensor:
        """levels: fine to coarse [(B?, d, 4g, 4g), (B?, d, 2g, 2g), (B, d, g, g)] (batch 1 broadcasts);
        terms: ``image_terms(levels[:-1])`` if already computed. Returns (B, d, 4g, 4g)."""
        y = levels[-1]
        if terms is None:  # nothing to reuse: the direct form is the least work for a single prompt
            self._check_stages(len(levels) - 1)
            for k, feat in enumerate(reversed(levels[:-1])):
                y = feat + F.interpolate(y, size=feat.shape[-2:], mode="nearest")
                y = F.relu(self.norms[k](self.conv_layers[k](y)))
            return y
        for k, term in enumerate(terms):
            if term.shape[-2:] == (2 * y.shape[-2], 2 * y.shape[-1]):
                y = conv3x3_after_upsample2x(y, self.conv_layers[k].weight, add=term)
            else:  # not an exact 2x step: upsample, then convolve
                up = F.interpolate(y, size=term.shape[-2:], mode="nearest")
                y = term + F.conv2d(up, self.conv_layers[k].weight, padding=1)
            y = F.relu(self.norms[k](y))
        return y


class SegmentationHead(nn.Module):
    """Prompt-attended encoder memory + neck levels -> pixel embedding -> masks and semantic map.

    1. ``memory += prompt_cross_attn(prompt_cross_attn_norm(memory), prompt)``;
    2. the g x g neck level is replaced by that memory and the pixel decoder runs up to 4g x 4g;
    3. instance masks ``mask_embedder(q) . instance_projection(pixels)``; semantic map ``semantic_projection``.
    """

    def __init__(self, cfg: SegHeadConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.pixel_decoder = PixelDecoder(d, cfg.num_upsampling_stages)
        self.mask_embedder = MLP(d, d, d, 3, names="layers")
        self.instance_projection = nn.Conv2d(d, d, 1)
        self.semantic_projection = nn.Conv2d(d, 1, 1)
        self.prompt_cross_attn = Attention(d, cfg.num_heads)
        self.prompt_cross_attn_norm = nn.LayerNorm(d)

    def image_terms(self, fpn: list[Tensor]) -> list[Tensor]:
        """The prompt-independent part of the pixel decoder for detector-neck levels ``fpn`` (see PixelDecoder)."""
        return self.pixel_decoder.image_terms(list(fpn[:-1]))

    def forward(self, queries: Tensor, memory: Tensor, fpn: list[Tensor], prompt: Tensor,
                prompt_padding_mask: Tensor, *, masks: bool = True, semantic: bool = True,
                image_terms: Optional[list[Tensor]] = None) -> tuple[Optional[Tensor], Optional[Tensor]]:
        """Predict.

        Args:
            queries: (B, Q, d) normed last-layer decoder queries.
            memory: (B, g*g, d) DETR-encoder output (row-major g x g).
            fpn: detector-neck levels [(B or 1, d, 4g, 4g), (B or 1, d, 2g, 2g), ...]; the last (g x g) level is
                not read (the memory takes its place). A batch of 1 is shared by all B prompts.
            prompt: (B, L, d); prompt_padding_mask: (B, L) bool, True = padding.
            masks, semantic: which outputs to compute (nothing runs when both are False).
            image_terms: ``image_terms(fpn)`` when already computed for these images (else computed here).
        Returns:
            mask_logits (B, Q, 4g, 4g) or None; semantic_logits (B, 1, 4g, 4g) or None.
        """
        if not (masks or semantic):
            return None, None
        attended = memory + self.prompt_cross_attn(self.prompt_cross_attn_norm(memory), prompt, prompt,
                                                   key_padding_mask=prompt_padding_mask)
        g_h, g_w = fpn[-1].shape[-2:]
        coarse = attended.transpose(1, 2).reshape(memory.shape[0], -1, g_h, g_w)
        pixels = self.pixel_decoder([*fpn[:-1], coarse], image_terms)
        mask_logits = semantic_logits = None
        if masks:
            # embed . (P pixels + p) = (embed P) . pixels + embed . p: the 1x1 projection moves to the Q query
            # vectors instead of running over every pixel
            embed = self.mask_embedder(queries)
            proj = self.instance_projection
            mixed = embed @ proj.weight.flatten(1)  # (B, Q, d)
            offset = embed @ proj.bias  # (B, Q)
            b, _, h, w = pixels.shape
            mask_logits = torch.baddbmm(offset[..., None], mixed, pixels.flatten(2)).view(b, -1, h, w)
        if semantic:
            semantic_logits = self.semantic_projection(pixels)
        return mask_logits, semantic_logits
