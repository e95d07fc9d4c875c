"""``CpuAttention``: the model's ``Attention`` with kernel choices that suit torch's CPU kernels.

The same parameters and the same numbers up to rounding; ``sam3kit.speed.cpu`` swaps it in for every
``Attention`` of a built model. Three choices:

- many queries over few keys without RoPE (the 5184 image tokens of the DETR encoder and of the segmentation head
  over a prompt of a few tokens): the query projection is folded into the keys and the output projection into
  the values, so that the queries meet one (dim, heads * Nk) matrix instead of two (dim, internal) projections;
- one side of at most ``SMALL_SIDE`` tokens: two batched matrix products instead of torch's fused attention
  kernel, which is slow on the CPU when one side is that short;
- RoPE by complex multiplication (``complex_rope``).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..model.layers import Attention
from ..model.rope import Rope
from .complex_rope import apply_rope_complex

SMALL_SIDE = 64
"""Attention with at most this many queries or keys is computed as two batched matrix products."""
MANY_QUERIES = 256
"""With at most ``SMALL_SIDE`` keys, at least this many queries and no RoPE, the projections are folded."""


class CpuAttention(Attention):
    """``Attention`` for the CPU (see the module docstring); build it with ``sam3kit.speed.cpu``, not directly."""

    def forward(self, q: Tensor, k: Tensor, v: Tensor, *, attn_bias: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None, q_rope: Optional[Rope] = None,
                k_rope: Optional[Rope] = None) -> Tensor:
        if (q_rope is None and k_rope is None and k.shape[1] <= SMALL_SIDE and q.shape[1] >= MANY_QUERIES
                and type(self.q_proj) is nn.Linear and type(self.o_proj) is nn.Linear):
            return self._few_keys(q, k, v, attn_bias, key_padding_mask)
        return super().forward(q, k, v, attn_bias=attn_bias, key_padding_mask=key_padding_mask, q_rope=q_rope,
                               k_rope=k_rope)

    def rotate(self, x: Tensor, rope: Rope) -> Tensor:
        return apply_rope_complex(x, rope)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        if min(q.shape[-2], k.shape[-2]) <= SMALL_SIDE:
            return attention_by_products(q, k, v, mask)
        return super().attend(q, k, v, mask)

    def _few_keys(self, q: Tensor, k: Tensor, v: Tensor, attn_bias: Optional[Tensor],
                  key_padding_mask: Optional[Tensor]) -> Tensor:
        """The attention with the projections folded, per head: ``(Wq x + bq) . k_j = x . (Wq^T k_j) + bq . k_j``
        and ``Wo_h sum_j a_j v_j = sum_j a_j (Wo_h v_j)``. Exact algebra."""
        b, nq, dim = q.shape
        h = self.num_heads
        kh, vh = self._heads(self.k_proj(k)), self._heads(self.v_proj(v))  # (B, h, Nk, dh)
        nk, dh = kh.shape[-2:]
        scale = dh ** -0.5
        keys_in = torch.einsum("bhkd,hdc->bhkc", kh, self.q_proj.weight.view(h, dh, dim)) * scale
        scores = q @ keys_in.reshape(kh.shape[0], h * nk, dim).transpose(1, 2)  # (B, Nq, h * Nk)
        if self.q_proj.bias is not None:
            scores = scores + (kh * self.q_proj.bias.view(1, h, 1, dh)).sum(-1).flatten(1)[:, None] * scale
        scores = scores.view(scores.shape[0], nq, h, nk)
        if attn_bias is not None:  # (B?, heads?, Nq?, Nk) -> (B?, Nq?, heads?, Nk)
            bias = attn_bias if attn_bias.dim() == 4 else attn_bias.view(1, 1, *attn_bias.shape[-2:])
            bias = bias.transpose(1, 2)
            scores = scores.masked_fill(~bias, float("-inf")) if bias.dtype == torch.bool else scores + bias
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        attn = torch.softmax(scores, dim=-1).flatten(2)  # (B, Nq, h * Nk)
        out_dim = self.o_proj.weight.shape[0]
        values_out = torch.einsum("bhkd,ohd->bhko", vh, self.o_proj.weight.view(out_dim, h, dh))
        out = attn @ values_out.reshape(vh.shape[0], h * nk, out_dim)
        return out if self.o_proj.bias is None else out + self.o_proj.bias


def attention_by_products(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
    """softmax(q k^T / sqrt(dh) + mask) v for (B, h, Nq, dh) x (B, h, Nk, dh) as two batched matrix products;
    ``mask`` as in ``F.scaled_dot_product_attention`` (bool: True = keep; float: added)."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    return torch.softmax(scores, dim=-1) @ v
