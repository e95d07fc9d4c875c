"""The SAM 3 image trunk: a Perception-Encoder ViT with windowed and global attention and 2-D RoPE.

Pipeline: patch embedding (Conv2d, no bias) -> + learned abs pos-emb TILED over the grid -> LayerNorm (``ln_pre``)
-> blocks. Every block is pre-norm ``x + Attn(LN1(x))``, ``x + MLP(LN2(x))``; window blocks attend inside
non-overlapping ``window x window`` windows, the blocks in ``global_attn_indexes`` attend over the whole grid.
RoPE is applied in every block: window blocks use a ``window x window`` grid (scale 1), global blocks the
``g x g`` grid with positions scaled by ``window / g`` ("interpolated" RoPE). No final norm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ViTConfig
from ..errors import CheckpointError, InputError
from .layers import MLP, Attention
from .rope import Rope, axial_rope


class PatchEmbeddings(nn.Module):
    """Non-overlapping ``patch x patch`` convolution (no bias): (B, 3, S, S) -> (B, C, S/p, S/p)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        p = cfg.patch_size
        self.projection = nn.Conv2d(3, cfg.hidden_size, kernel_size=p, stride=p, bias=False)

    def forward(self, pixels: Tensor) -> Tensor:
        return self.projection(pixels)


class ViTEmbeddings(nn.Module):
    """Patch embedding plus the pretrain-size abs pos-emb tiled over the grid.

    ``position_embeddings``: (1, P*P, C), P = pretrain grid side (24 at release; the checkpoint's cls slot is
    already dropped). Grid position (i, j) gets ``table[i mod P, j mod P]``.
    """

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.patch_embeddings = PatchEmbeddings(cfg)
        p = cfg.pretrain_grid_size
        self.position_embeddings = nn.Parameter(torch.zeros(1, p * p, cfg.hidden_size))

    def tiled_position(self, h: int, w: int) -> Tensor:
        """(h, w, C): the pos-emb table repeated over an h x w grid."""
        table = self.position_embeddings
        p = math.isqrt(int(table.shape[1]))  # int(): a plain number also while a tracer records sizes
        table = table.view(p, p, -1)
        reps_h, reps_w = -(-h // p), -(-w // p)
        return table.repeat(reps_h, reps_w, 1)[:h, :w]

    def forward(self, pixels: Tensor) -> Tensor:
        """pixels (B, 3, S, S) -> tokens (B, g, g, C) channels-last."""
        x = self.patch_embeddings(pixels).permute(0, 2, 3, 1)
        return x + self.tiled_position(x.shape[1], x.shape[2])


class ViTLayer(nn.Module):
    """One pre-norm block. ``window_size`` 0 = global attention over the whole grid."""

    def __init__(self, cfg: ViTConfig, window_size: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attention = Attention(cfg.hidden_size, cfg.num_heads)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_size, 2, act="gelu", names="fc")

    def forward(self, x: Tensor, rope: Rope) -> Tensor:
        """x: (B, H, W, C); rope: table of the attention grid (window x window, or H x W for global blocks)."""
        return self.mlp_step(self.attention_step(x, rope))

    def attention_step(self, x: Tensor, rope: Rope) -> Tensor:
        """``x + Attn(LN1 x)``, windowed or global: (B, H, W, C) -> a new (B, H, W, C) tensor."""
        b, h, w, c = x.shape
        y = self.layer_norm1(x)
        if self.window_size > 0:
            windows, hp, wp = window_partition(y, self.window_size)
            t = windows.flatten(1, 2)
            t = self.attention(t, t, t, q_rope=rope, k_rope=rope)
            y = window_unpartition(t.view_as(windows), b, hp, wp)[:, :h, :w]
        else:
            t = y.reshape(b, h * w, c)
            y = self.attention(t, t, t, q_rope=rope, k_rope=rope).view(b, h, w, c)
        return x + y

    def mlp_step(self, x: Tensor) -> Tensor:
        """``x + MLP(LN2 x)`` on the output of ``attention_step`` (``sam3kit.speed`` may write it into ``x``)."""
        return x + self.mlp(self.layer_norm2(x))


class ViT(nn.Module):
    """The image trunk.

    Input: pixels (B, 3, S, S) normalised to [-1, 1], S = ``cfg.image_size``.
    Output: (B, C, g, g) with C = ``cfg.hidden_size`` and g = S / patch (72 at release).
    """

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise CheckpointError(f"image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}; "
                                  "check the configuration")
        self.config = cfg
        self.embeddings = ViTEmbeddings(cfg)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        globals_ = set(cfg.global_attn_indexes)
        self.layers = nn.ModuleList(
            ViTLayer(cfg, 0 if i in globals_ else cfg.window_size) for i in range(cfg.num_layers))

    def rope_tables(self, device: torch.device) -> tuple[Rope, Rope]:
        """(window table, global table): RoPE of the window grid (scale 1) and of the g x g grid (scale window/g)."""
        cfg = self.config
        head_dim = cfg.hidden_size // cfg.num_heads
        w, g = cfg.window_size, cfg.grid_size
        window = axial_rope(head_dim, w, w, theta=cfg.rope_theta, device=device)
        whole = axial_rope(head_dim, g, g, theta=cfg.rope_theta, scale=w / g, device=device)
        return window, whole

    def forward(self, pixels: Tensor) -> Tensor:
        cfg = self.config
        if pixels.dim() != 4 or tuple(pixels.shape[1:]) != (3, cfg.image_size, cfg.image_size):
            raise InputError(
                f"ViT expects pixels of shape (B, 3, {cfg.image_size}, {cfg.image_size}), got {tuple(pixels.shape)}; "
                "resize images to the model input size first")
        x = self.embeddings(pixels.to(self.embeddings.position_embeddings.dtype))
        x = self.layer_norm(x)
        window_rope, global_rope = self.rope_tables(x.device)
        for layer in self.layers:
            x = layer(x, window_rope if layer.window_size > 0 else global_rope)
        return x.permute(0, 3, 1, 2)


def window_partition(x: Tensor, window: int) -> tuple[Tensor, int, int]:
    """(B, H, W, C) -> (B * nW, window, window, C), zero-padding H and W up to multiples of ``window``.

    Returns the windows and the padded height and width.
    """
    b, h, w, c = x.shape
    ph, pw = -h % window, -w % window
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // window, window, wp // window, window, c).transpose(2, 3)
    return x.reshape(-1, window, window, c), hp, wp


def window_unpartition(windows: Tensor, batch: int, hp: int, wp: int) -> Tensor:
    """Inverse of ``window_partition`` (padding kept): (B * nW, window, window, C) -> (B, hp, wp, C)."""
    window, c = windows.shape[1], windows.shape[-1]
    x = windows.view(batch, hp // window, wp // window, window, window, c).transpose(2, 3)
    return x.reshape(batch, hp, wp, c)
