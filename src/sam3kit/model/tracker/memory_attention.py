"""Memory attention: conditions the current frame's g x g features on memories of other frames.

Pre-norm layers: ``x += SelfAttn(LN1(x))``, ``x += CrossAttn(q=LN2(x), k=mem + mem_pos, v=mem)``,
``x += FFN(LN3(x))`` (ReLU); a final LayerNorm. Both attentions use 2-D axial RoPE over the g x g grid (no additive
position in the queries). In the cross-attention the key table is repeated for every spatial memory frame
(g*g tokens each), and the trailing object-pointer tokens get no rotation. The input is ``x + 0.1 * pos``.

Objects tracked together on one frame share its image features: given features of batch 1 and memories of batch
B, the first layer's self-attention (which reads only the image) runs once and its output is shared by the B
objects' streams from the first cross-attention on.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from ...config import TrackerConfig
from ...errors import InputError
from ..layers import Attention
from ..rope import axial_rope, repeat_rope


class MemoryAttentionLayer(nn.Module):
    """One pre-norm layer: RoPE self-attention, RoPE cross-attention to memory (k/v width = memory dim), FFN."""

    def __init__(self, dim: int, num_heads: int, memory_dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.cross_attn_image = Attention(dim, num_heads, kv_dim=memory_dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.layer_norm1 = nn.LayerNorm(dim)
        self.layer_norm2 = nn.LayerNorm(dim)
        self.layer_norm3 = nn.LayerNorm(dim)
        self.act = nn.ReLU()

    def forward(self, x: Tensor, memory: Tensor, memory_pos: Tensor, q_rope, k_rope) -> Tensor:
        """x: (B or 1, g*g, d); memory, memory_pos: (B, M, memory_dim) (memory_pos may have batch 1).
        Returns (B, g*g, d): an x of batch 1 is one image stream shared by the B memories."""
        h = self.layer_norm1(x)
        x = x + self.self_attn(h, h, h, q_rope=q_rope, k_rope=q_rope)
        h = self.layer_norm2(x)
        b = memory.shape[0]
        if x.shape[0] != b:
            x, h = x.expand(b, -1, -1), h.expand(b, -1, -1)
        x = x + self.cross_attn_image(h, memory + memory_pos, memory, q_rope=q_rope, k_rope=k_rope)
        h = self.layer_norm3(x)
        return x + self.linear2(self.act(self.linear1(h)))


class MemoryAttention(nn.Module):
    """The stack of memory-attention layers and the output LayerNorm."""

    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.memory_attention_num_heads
        self.rope_theta = cfg.rope_theta
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(d, self.num_heads, cfg.memory_dim, cfg.memory_attention_ffn_dim)
            for _ in range(cfg.memory_attention_num_layers))
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, features: Tensor, memory: Tensor, memory_pos: Tensor, *, pos: Optional[Tensor] = None,
                num_pointer_tokens: int = 0) -> Tensor:
        """Condition image features on memory.

        Args:
            features: (B, d, g, g) current-frame tracker features (g x g level, no no-memory embedding), or
                (1, d, g, g) shared by the B memories (the first self-attention then runs once).
            memory: (B, F*g*g + P, memory_dim) spatial memories of F frames (each g*g tokens, row-major) followed by
                P object-pointer tokens.
            memory_pos: (B, F*g*g + P, memory_dim) their position encodings (added to the keys only).
            pos: (B or 1, d, g, g) sine position map of the current features (enters as ``0.1 * pos``), or None.
            num_pointer_tokens: P, the trailing tokens that get no RoPE.
        Returns:
            (B, d, g, g) memory-conditioned features.
        """
        _, d, h, w = features.shape
        b = memory.shape[0]
        if features.shape[0] not in (1, b):
            raise InputError(f"features have batch {features.shape[0]} but the memory has batch {b}")
        x = features.flatten(2).transpose(1, 2)
        if pos is not None:
            x = x + 0.1 * pos.flatten(2).transpose(1, 2)
        n_spatial = memory.shape[1] - num_pointer_tokens
        if n_spatial < 0 or n_spatial % (h * w):
            raise InputError(f"memory has {memory.shape[1]} tokens with {num_pointer_tokens} pointer tokens; the "
                             f"spatial part must be a multiple of {h}x{w}")
        rope = axial_rope(d // self.num_heads, w, h, theta=self.rope_theta, device=features.device)
        k_rope = repeat_rope(rope, n_spatial // (h * w))
        for layer in self.layers:
            x = layer(x, memory, memory_pos, rope, k_rope)
        x = self.layer_norm(x)
        return x.transpose(1, 2).reshape(b, d, h, w)
