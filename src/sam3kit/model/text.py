"""The CLIP-style causal text transformer (HF ``CLIPTextModelWithProjection`` layout).

token + learned position embedding -> N pre-norm blocks (``x + MHA(LN1(x))`` with a causal mask, ``x + MLP(LN2(x))``,
MLP with exact GELU) -> final LayerNorm on every token. As in the official model no padding mask is used inside
the transformer: with causal attention, valid tokens never see the padding after them. ``text_projection`` is in
the checkpoint but unused by SAM 3 (the detector projects every token with its own 1024 -> d resizer).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import TextConfig
from ..errors import InputError
from .layers import MLP, Attention


class TextEmbeddings(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embedding = nn.Embedding(cfg.context_length, cfg.hidden_size)

    def forward(self, input_ids: Tensor) -> Tensor:
        """(B, L) int64 -> (B, L, hidden)."""
        return self.token_embedding(input_ids) + self.position_embedding.weight[: input_ids.shape[1]]


class TextLayer(nn.Module):
    """Pre-norm causal self-attention block."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.self_attn = Attention(cfg.hidden_size, cfg.num_heads)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_size, 2, act="gelu", names="fc")

    def forward(self, x: Tensor, causal: Tensor) -> Tensor:
        """x: (B, L, hidden); causal: (L, L) bool, True = may attend."""
        y = self.layer_norm1(x)
        x = x + self.self_attn(y, y, y, attn_bias=causal)
        return x + self.mlp(self.layer_norm2(x))


class TextEncoderStack(nn.Module):
    """The layer list (module name ``encoder`` in the checkpoint)."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TextLayer(cfg) for _ in range(cfg.num_layers))

    def forward(self, x: Tensor, causal: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, causal)
        return x


class TextTransformer(nn.Module):
    """Embeddings, causal blocks, final LayerNorm (module name ``text_model`` in the checkpoint)."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.embeddings = TextEmbeddings(cfg)
        self.encoder = TextEncoderStack(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: Tensor) -> Tensor:
        n = input_ids.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=input_ids.device).tril()
        return self.final_layer_norm(self.encoder(self.embeddings(input_ids), causal))


class TextEncoder(nn.Module):
    """The text encoder of the detector.

    Input: input_ids (B, L) int64, L <= ``cfg.context_length`` (32 at release), as made by ``Sam3Tokenizer``.
    Output: (B, L, hidden) final-LayerNorm token states (hidden = 1024 at release). States at padding positions
    are computed too (they do not influence valid tokens); mask them with the tokenizer's padding mask.
    """

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.config = cfg
        self.text_model = TextTransformer(cfg)
        self.text_projection = nn.Linear(cfg.hidden_size, cfg.projection_dim, bias=False)  # unused, kept for loading

    def forward(self, input_ids: Tensor) -> Tensor:
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.int64, torch.int32):
            raise InputError(f"input_ids must be a (B, L) integer tensor, got {tuple(input_ids.shape)} "
                             f"{input_ids.dtype}; use Sam3Tokenizer to make them")
        if input_ids.shape[1] > self.config.context_length:
            raise InputError(f"input_ids has {input_ids.shape[1]} tokens, the text encoder takes at most "
                             f"{self.config.context_length}")
        return self.text_model(input_ids)
