"""SAM prompt encoder: clicks and box corners -> sparse tokens, mask logits -> dense map.

Coordinates are pixels of the model input frame (0..S, S = image size, 1008 at release). A point is shifted to
its pixel centre (+0.5), normalised by S, mapped to [-1, 1] and encoded with random Fourier features
``[sin(2 pi c G), cos(2 pi c G)]`` (G: a fixed (2, d/2) Gaussian matrix from the checkpoint). The image-wide
position encoding of the mask decoder uses the same encoding of the grid's cell centres (``Tracker.dense_pe``).

Point labels: 1 foreground, 0 background, 2 box top-left, 3 box bottom-right, -1 "not a point" (padding).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import LayerNorm2d

PAD_LABEL = -1
"""Label of a padding ("not a point") entry: its position is ignored, ``not_a_point_embed`` is used instead."""


class RandomFourierEmbedding(nn.Module):
    """Random-Fourier position encoding of points normalised to [0, 1]^2.

    ``positional_embedding``: (2, num_feats) persistent buffer (part of the checkpoint). ``matrix``: hold this
    tensor as the buffer instead of a new random one (the same tensor, not a copy).
    """

    def __init__(self, num_feats: int, matrix: Optional[Tensor] = None) -> None:
        super().__init__()
        self.register_buffer("positional_embedding", torch.randn(2, num_feats) if matrix is None else matrix)

    def forward(self, coords: Tensor) -> Tensor:
        """coords: (..., 2) as (x, y) in [0, 1]. Returns (..., 2 * num_feats) float32 as [sin | cos]."""
        c = (2 * coords.float() - 1) @ self.positional_embedding.float()
        c = 2 * math.pi * c
        return torch.cat([torch.sin(c), torch.cos(c)], dim=-1)

    def grid(self, g: int) -> Tensor:
        """Encoding of the cell centres ((i + 0.5) / g) of a g x g grid: (1, 2 * num_feats, g, g) float32."""
        centres = (torch.arange(g, device=self.positional_embedding.device, dtype=torch.float32) + 0.5) / g
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        return self(torch.stack([x, y], dim=-1)).permute(2, 0, 1).unsqueeze(0)


class MaskEmbedding(nn.Module):
    """Mask-prompt downscaling: (B, 1, 4g, 4g) logits -> (B, d, g, g).

    Conv(1 -> c/4, k2 s2) -> LayerNorm2d -> GELU -> Conv(c/4 -> c, k2 s2) -> LayerNorm2d -> GELU -> Conv1x1(c -> d).
    """

    def __init__(self, mask_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, mask_channels // 4, kernel_size=2, stride=2)
        self.layer_norm1 = LayerNorm2d(mask_channels // 4)
        self.conv2 = nn.Conv2d(mask_channels // 4, mask_channels, kernel_size=2, stride=2)
        self.layer_norm2 = LayerNorm2d(mask_channels)
        self.conv3 = nn.Conv2d(mask_channels, hidden_size, kernel_size=1)
        self.act = nn.GELU()

    def forward(self, masks: Tensor) -> Tensor:
        x = self.act(self.layer_norm1(self.conv1(masks)))
        x = self.act(self.layer_norm2(self.conv2(x)))
        return self.conv3(x)


class PromptEncoder(nn.Module):
    """Encodes points (and box corners given as points) and mask prompts for the SAM mask decoder.

    Args:
        hidden_size: token width d.
        image_size: side S of the (square) model input in pixels.
        grid_size: side g of the image-embedding grid (S / patch size).
        mask_channels: hidden channels of the mask downscaling (16).
        num_point_embeddings: learned label embeddings (4: labels 0..3).
    """

    def __init__(self, hidden_size: int, image_size: int, grid_size: int, mask_channels: int = 16,
                 num_point_embeddings: int = 4) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.image_size = image_size
        self.grid_size = grid_size
        self.shared_embedding = RandomFourierEmbedding(hidden_size // 2)
        self.mask_embed = MaskEmbedding(mask_channels, hidden_size)
        self.no_mask_embed = nn.Embedding(1, hidden_size)
        self.point_embed = nn.Embedding(num_point_embeddings, hidden_size)
        self.not_a_point_embed = nn.Embedding(1, hidden_size)

    @property
    def mask_input_size(self) -> int:
        """Side of the mask prompt: 4g (288 at release)."""
        return 4 * self.grid_size

    def dense_pe(self) -> Tensor:
        """Position encoding of the g x g embedding grid with this encoder's matrix: (1, d, g, g).

        This is the official ``get_dense_pe`` (one matrix for prompts and grid). ``Tracker`` encodes the grid with
        its own ``shared_image_embedding`` copy instead (``Tracker.dense_pe``), which equals this one for the
        released weights.
        """
        return self.shared_embedding.grid(self.grid_size)

    def embed_points(self, points: Tensor, labels: Tensor) -> Tensor:
        """Point tokens.

        Args:
            points: (B, N, 2) float, (x, y) pixels of the model input frame.
            labels: (B, N) int in {-1, 0, 1, 2, 3}.
        Returns:
            (B, N, d) float32.
        """
        pe = self.shared_embedding((points.float() + 0.5) / self.image_size)
        labels = labels.long()
        pad = (labels == PAD_LABEL).unsqueeze(-1)
        emb = torch.where(pad, self.not_a_point_embed.weight.float().expand_as(pe), pe)
        label_emb = self.point_embed(labels.clamp(min=0)).float()
        return emb + label_emb * (labels >= 0).unsqueeze(-1)

    def embed_mask(self, masks: Tensor) -> Tensor:
        """Mask prompt (B, 1, 4g, 4g) logits -> (B, d, g, g)."""
        return self.mask_embed(masks)

    def forward(self, points: Optional[Tensor] = None, labels: Optional[Tensor] = None,
                masks: Optional[Tensor] = None, *, batch_size: int = 1, pad: bool = True) -> tuple[Tensor, Tensor]:
        """Sparse and dense prompt embeddings.

        Args:
            points: (B, N, 2) model-frame pixels, or None (no sparse tokens at all).
            labels: (B, N) labels of ``points``.
            masks: (B, 1, 4g, 4g) mask-prompt logits, or None (``no_mask_embed`` everywhere).
            batch_size: B when neither points nor masks are given.
            pad: append one padding point (label -1) after the points, as the official predictor always does.
        Returns:
            sparse: (B, N + pad, d) (or (B, 0, d) without points);
            dense: (B, d, g, g).
        """
        if points is not None:
            b = points.shape[0]
        elif masks is not None:
            b = masks.shape[0]
        else:
            b = batch_size
        dtype = self.point_embed.weight.dtype
        if points is not None:
            if pad:
                points = F.pad(points, (0, 0, 0, 1), value=0.0)
                labels = F.pad(labels, (0, 1), value=PAD_LABEL)
            sparse = self.embed_points(points, labels).to(dtype)
        else:
            sparse = self.point_embed.weight.new_zeros(b, 0, self.hidden_size)
        if masks is not None:
            dense = self.embed_mask(masks.to(dtype))
        else:
            g = self.grid_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(b, -1, g, g)
        return sparse, dense
