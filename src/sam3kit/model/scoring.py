"""The class score of the detector: dot product between each query and the mean-pooled prompt."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .layers import MLP


class DotProductScoring(nn.Module):
    """``logit_q = clamp(query_proj(q) . text_proj(pool(p)) / sqrt(d), -12, 12)``.

    ``p = text_mlp_out_norm(p + text_mlp(p))`` per prompt token, ``pool`` = mean over the valid (not padding)
    prompt tokens (text and geometry, CLS included; at least one token is counted).
    """

    clamp_value = 12.0

    def __init__(self, hidden_size: int, mlp_dim: int) -> None:
        super().__init__()
        self.text_mlp = MLP(hidden_size, mlp_dim, hidden_size, 2, names="layer")
        self.text_mlp_out_norm = nn.LayerNorm(hidden_size)
        self.text_proj = nn.Linear(hidden_size, hidden_size)
        self.query_proj = nn.Linear(hidden_size, hidden_size)
        self.scale = 1.0 / math.sqrt(hidden_size)

    def forward(self, queries: Tensor, prompt: Tensor, prompt_padding_mask: Tensor) -> Tensor:
        """Score.

        Args:
            queries: (B, Q, d) normed decoder queries.
            prompt: (B, L, d) prompt tokens; prompt_padding_mask: (B, L) bool, True = padding.
        Returns:
            (B, Q) class logits in [-12, 12].
        """
        p = self.text_mlp_out_norm(prompt + self.text_mlp(prompt))
        valid = (~prompt_padding_mask).to(p.dtype)[..., None]
        pooled = (p * valid).sum(1) / valid.sum(1).clamp(min=1.0)
        scores = torch.einsum("bqc,bc->bq", self.query_proj(queries), self.text_proj(pooled)) * self.scale
        return scores.clamp(-self.clamp_value, self.clamp_value)
