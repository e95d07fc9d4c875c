"""The SAM two-way transformer: prompt tokens and image tokens attend to each other.

Every sub-block is post-norm (``x = LN(x + f(x))``). Token->image and image->token attention project to an internal
width ``d / attention_downsample_rate``; self-attention keeps the full width. In the first block the
self-attention sees no position encoding and has no residual (``queries = SelfAttn(queries)``).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers import MLP, Attention


class TwoWayBlock(nn.Module):
    """Self-attention, token->image attention, MLP, image->token attention."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.layer_norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, internal_dim=dim // downsample_rate)
        self.layer_norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, 2, act="relu", names="sam")
        self.layer_norm3 = nn.LayerNorm(dim)
        self.layer_norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, internal_dim=dim // downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor) -> tuple[Tensor, Tensor]:
        """queries, query_pe: (B, T, d); keys, key_pe: (B, HW, d). Returns updated (queries, keys)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.layer_norm1(queries)

        k = keys + key_pe  # keys do not change before the image->token attention: one sum serves both
        queries = self.layer_norm2(queries + self.cross_attn_token_to_image(queries + query_pe, k, keys))

        queries = self.layer_norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.layer_norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks, then a final token->image attention and LayerNorm.

    Args:
        dim: width d; num_heads: heads of every attention; mlp_dim: hidden width of the token MLP (ReLU);
        downsample_rate: internal-width divisor of the cross-attentions.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_dim: int, downsample_rate: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayBlock(dim, num_heads, mlp_dim, downsample_rate, skip_first_layer_pe=(i == 0)) for i in range(depth))
        self.final_attn_token_to_image = Attention(dim, num_heads, internal_dim=dim // downsample_rate)
        self.layer_norm_final_attn = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, image: Tensor, image_pe: Tensor) -> tuple[Tensor, Tensor]:
        """Run the transformer.

        Args:
            tokens: (B, T, d) output + prompt tokens (also used as their own position encoding).
            image: (B, d, h, w) image embedding (plus dense prompt).
            image_pe: (B or 1, d, h, w) position encoding of the image grid.
        Returns:
            queries: (B, T, d) final tokens; keys: (B, h*w, d) final image tokens.
        """
        # token-major and contiguous once, so that every sum and LayerNorm below runs on dense memory
        keys = image.flatten(2).transpose(1, 2).contiguous()
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous().expand_as(keys)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        q, k = queries + tokens, keys + key_pe
        queries = self.layer_norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
