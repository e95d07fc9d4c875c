"""The DETR "fusion" encoder: image tokens attend to themselves and to the prompt tokens.

``EncoderLayer`` (pre-norm self-attention, cross-attention, ReLU FFN) is also the layer of the geometry
encoder, which runs it the other way round (prompt tokens over image tokens).
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from ..config import TransformerConfig
from .layers import MLP, Attention


class EncoderLayer(nn.Module):
    """Pre-norm layer: ``x += SelfAttn(LN1 x)``, ``x += CrossAttn(LN2 x, memory)``, ``x += FFN(LN3 x)``.

    Parameter names: ``layer_norm1, self_attn, cross_attn, layer_norm2, mlp.fc1/fc2, layer_norm3``.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.layer_norm1 = nn.LayerNorm(d)
        self.self_attn = Attention(d, cfg.num_heads)
        self.cross_attn = Attention(d, cfg.num_heads)
        self.layer_norm2 = nn.LayerNorm(d)
        self.mlp = MLP(d, cfg.intermediate_size, d, 2, act="relu", names="fc")
        self.layer_norm3 = nn.LayerNorm(d)

    def forward(self, x: Tensor, memory: Tensor, *, pos: Optional[Tensor] = None,
                padding_mask: Optional[Tensor] = None, memory_pos: Optional[Tensor] = None,
                memory_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Update ``x``.

        Args:
            x: (B, N, d) tokens to update.
            memory: (B, M, d) tokens to cross-attend to (values are taken without position).
            pos: position added to the self-attention queries and keys, broadcastable to x.
            padding_mask: (B, N) bool, True = padding key in the self-attention.
            memory_pos: position added to the cross-attention keys, broadcastable to memory.
            memory_padding_mask: (B, M) bool, True = padding key in the cross-attention.
        Returns:
            (B, N, d)
        """
        return self.after_self_attention(self.self_attention(x, pos=pos, padding_mask=padding_mask), memory,
                                         memory_pos=memory_pos, memory_padding_mask=memory_padding_mask)

    def self_attention(self, x: Tensor, *, pos: Optional[Tensor] = None,
                       padding_mask: Optional[Tensor] = None) -> Tensor:
        """The first residual step, ``x + SelfAttn(LN1 x)``: (B, N, d) -> (B, N, d). It does not read the memory."""
        h = self.layer_norm1(x)
        qk = h if pos is None else h + pos
        return x + self.self_attn(qk, qk, h, key_padding_mask=padding_mask)

    def after_self_attention(self, x: Tensor, memory: Tensor, *, memory_pos: Optional[Tensor] = None,
                             memory_padding_mask: Optional[Tensor] = None) -> Tensor:
        """The cross-attention and FFN steps on the output of ``self_attention``."""
        h = self.layer_norm2(x)
        keys = memory if memory_pos is None else memory + memory_pos
        return self.mlp_step(x + self.cross_attn(h, keys, memory, key_padding_mask=memory_padding_mask))

    def mlp_step(self, x: Tensor) -> Tensor:
        """``x + FFN(LN3 x)`` on the output of the cross-attention step (``sam3kit.speed`` may write it into
        ``x``)."""
        return x + self.mlp(self.layer_norm3(x))


class DetrEncoder(nn.Module):
    """Image tokens (one feature level, with their sine position) fused with the prompt; no final norm.

    The prompt itself is not updated (decoder, scorer and mask head read the same prompt tensor).
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_layers))

    def image_start(self, image: Tensor, pos: Tensor) -> Tensor:
        """The prompt-independent start of the encoder: the first layer's self-attention over the image tokens
        (the prompt enters at its cross-attention). (B, HW, d) -> (B, HW, d); pass it to ``forward`` as ``start``
        to reuse it for every prompt on these images. The result is contiguous whatever the layout of ``image``
        (the flattened tokens of a (B, d, h, w) map are a transposed view, and every later residual sum would keep
        that layout; the row-blocked FFN of ``sam3kit.speed`` writes into a contiguous stream only)."""
        return self.layers[0].self_attention(image, pos=pos).contiguous()

    def forward(self, image: Tensor, pos: Tensor, prompt: Tensor, prompt_padding_mask: Tensor, *,
                start: Optional[Tensor] = None) -> Tensor:
        """Encode.

        Args:
            image: (B, HW, d) flattened (row-major) image tokens.
            pos: (HW, d) or (B, HW, d) sine position of the image tokens.
            prompt: (B, L, d) prompt tokens (text + geometry).
            prompt_padding_mask: (B, L) bool, True = padding.
            start: ``image_start(image, pos)`` computed earlier (B or 1 rows), or None to compute it here.
        Returns:
            (B, HW, d) encoded image tokens ("memory").
        """
        first, *rest = self.layers
        x = self.image_start(image, pos) if start is None else start.expand(image.shape[0], -1, -1)
        x = first.after_self_attention(x, prompt, memory_padding_mask=prompt_padding_mask)
        for layer in rest:
            x = layer(x, prompt, pos=pos, memory_padding_mask=prompt_padding_mask)
        return x
