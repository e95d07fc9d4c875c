"""Memory encoder: fuses a frame's g x g features with its predicted mask into a (memory_dim, g, g) memory.

The official order (transformers resizes the logits first): the full-resolution mask logits are first turned into the
memory input (sigmoid, or binarised ``logit > 0`` for click-derived masks; then ``* 20 - 10``) and only then
resized, bilinear with antialias, to the downsampler's input size ``16 g`` (1152 at release).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config import TrackerConfig
from ..layers import LayerNorm2d
from ..position import sine_position_2d

MASK_SCALE = 20.0
"""Scale applied to the sigmoid / binarised mask before encoding (official ``sigmoid_scale_for_mem_enc``)."""
MASK_BIAS = -10.0
"""Bias added after scaling (official ``sigmoid_bias_for_mem_enc``)."""


def mask_for_memory(mask_logits: Tensor, *, binarize: bool = False) -> Tensor:
    """The memory-encoder input of mask logits: ``sigmoid(x)`` (or ``x > 0`` if ``binarize``) ``* 20 - 10``.

    Args:
        mask_logits: (B, 1, H, W) logits at any resolution (the official tracker passes S x S).
        binarize: True for masks that come from clicks (official ``is_mask_from_pts`` at inference).
    Returns:
        (B, 1, H, W) float32.
    """
    m = (mask_logits > 0).float() if binarize else torch.sigmoid(mask_logits.float())
    return m * MASK_SCALE + MASK_BIAS


class DownsampleLayer(nn.Module):
    """Conv (stride s) -> LayerNorm2d -> GELU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=kernel_size, stride=stride, padding=padding)
        self.layer_norm = LayerNorm2d(out_ch)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.layer_norm(self.conv(x)))


class MaskDownsampler(nn.Module):
    """(B, 1, 16g, 16g) -> (B, embed_dim, g, g): log_s(total_stride) strided layers (channels x s^2 each), 1x1 conv."""

    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        s = cfg.mask_downsampler_stride
        n = int(math.log2(cfg.mask_downsampler_total_stride) // math.log2(s))
        chans = [s ** (2 * i) for i in range(n + 1)]
        self.layers = nn.ModuleList(
            DownsampleLayer(a, b, cfg.mask_downsampler_kernel_size, s, cfg.mask_downsampler_padding)
            for a, b in zip(chans[:-1], chans[1:]))
        self.final_conv = nn.Conv2d(chans[-1], cfg.mask_downsampler_embed_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.final_conv(x)


class FuserBlock(nn.Module):
    """ConvNeXt block: depthwise conv -> LayerNorm2d -> Linear -> GELU -> Linear -> layer scale -> residual."""

    def __init__(self, dim: int, hidden_dim: int, kernel_size: int, padding: int) -> None:
        super().__init__()
        self.depthwise_conv = nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=padding, groups=dim)
        self.layer_norm = LayerNorm2d(dim)
        self.pointwise_conv1 = nn.Linear(dim, hidden_dim)
        self.pointwise_conv2 = nn.Linear(hidden_dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 1e-6))
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        h = self.layer_norm(self.depthwise_conv(x)).permute(0, 2, 3, 1)
        h = self.scale * self.pointwise_conv2(self.act(self.pointwise_conv1(h)))
        return x + h.permute(0, 3, 1, 2)


class MemoryFuser(nn.Module):
    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            FuserBlock(cfg.hidden_size, cfg.memory_fuser_intermediate_dim, cfg.memory_fuser_kernel_size,
                       cfg.memory_fuser_padding) for _ in range(cfg.memory_fuser_num_layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Mask downsampler + feature projection + fuser + projection to ``memory_dim`` channels."""

    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        self.input_size = cfg.grid_size * cfg.mask_downsampler_total_stride
        self.memory_dim = cfg.memory_dim
        self.mask_downsampler = MaskDownsampler(cfg)
        self.feature_projection = nn.Conv2d(cfg.hidden_size, cfg.hidden_size, kernel_size=1)
        self.memory_fuser = MemoryFuser(cfg)
        self.projection = nn.Conv2d(cfg.hidden_size, cfg.memory_dim, kernel_size=1)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Encode one memory per batch element.

        Args:
            features: (B, d, g, g) raw tracker-neck features of the frame (without the no-memory embedding and
                without memory conditioning).
            mask: (B, 1, H, W) memory input from ``mask_for_memory`` (already sigmoid/binarised and scaled); resized
                here (bilinear, antialias) to 16g x 16g when H, W differ.
        Returns:
            (B, memory_dim, g, g) memory features (the no-object embedding is the tracker's business).
        """
        if tuple(mask.shape[-2:]) != (self.input_size, self.input_size):
            mask = F.interpolate(mask.float(), size=(self.input_size, self.input_size), mode="bilinear",
                                 align_corners=False, antialias=True)
        m = self.mask_downsampler(mask.to(features.dtype))
        x = self.feature_projection(features) + m
        return self.projection(self.memory_fuser(x))

    def position(self, grid_size: int, *, device=None, dtype: torch.dtype = torch.float32) -> Tensor:
        """Sine position map of the memory: (memory_dim, g, g)."""
        return sine_position_2d(grid_size, grid_size, self.memory_dim, device=device, dtype=dtype)
