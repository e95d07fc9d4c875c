"""The DETR decoder of the detector: a presence token + object queries with iterative box refinement.

Per layer (post-norm): self-attention of [presence; queries] (queries carry a position made from their current
reference box), cross-attention to the prompt, cross-attention to the encoded image with a box relative position
bias ("log" BoxRPB), FFN. After each layer the normed queries refine the reference boxes in logit space. Only
the last layer's queries, boxes and presence logit are returned (the intermediate ones only serve training).
The presence logit is not clamped, as in the official model (transformers clamps it to +-10).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import DecoderConfig
from ..ops.autograd import needs_autograd
from ..ops.boxes import box_cxcywh_to_xyxy
from .layers import MLP, Attention
from .position import sine_coords


def inverse_sigmoid(x: Tensor, eps: float = 1e-3) -> Tensor:
    """logit(x) with x clamped to [0, 1] and both x and 1 - x clamped to >= ``eps`` (official eps 1e-3)."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class DecoderLayer(nn.Module):
    """Post-norm layer. Names: ``self_attn(_layer_norm)``, ``text_cross_attn(_layer_norm)``,
    ``vision_cross_attn(_layer_norm)``, ``mlp.fc1/fc2``, ``mlp_layer_norm``."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.self_attn = Attention(d, cfg.num_heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.text_cross_attn = Attention(d, cfg.num_heads)
        self.text_cross_attn_layer_norm = nn.LayerNorm(d)
        self.vision_cross_attn = Attention(d, cfg.num_heads)
        self.vision_cross_attn_layer_norm = nn.LayerNorm(d)
        self.mlp = MLP(d, cfg.intermediate_size, d, 2, act="relu", names="fc")
        self.mlp_layer_norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, query_pos: Tensor, prompt: Tensor, prompt_padding_mask: Tensor,
                memory: Tensor, memory_keys: Tensor, box_bias: Tensor) -> Tensor:
        """Args:
            x: (B, 1 + Q, d) presence token then queries; query_pos: (B, 1 + Q, d) (zero for the presence token).
            prompt: (B, L, d); prompt_padding_mask: (B, L) bool, True = padding.
            memory: (B, HW, d) encoded image (values); memory_keys: memory + its position.
            box_bias: (B, heads, 1 + Q, HW) additive attention bias of the image cross-attention.
        Returns:
            (B, 1 + Q, d)
        """
        q = x + query_pos
        x = self.self_attn_layer_norm(x + self.self_attn(q, q, x))
        x = self.text_cross_attn_layer_norm(
            x + self.text_cross_attn(x + query_pos, prompt, prompt, key_padding_mask=prompt_padding_mask))
        x = self.vision_cross_attn_layer_norm(
            x + self.vision_cross_attn(x + query_pos, memory_keys, memory, attn_bias=box_bias))
        return self.mlp_layer_norm(x + self.mlp(x))


class DetrDecoder(nn.Module):
    """Presence token + ``num_queries`` queries refined over ``num_layers`` layers."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_layers))
        self.output_layer_norm = nn.LayerNorm(d)
        self.box_head = MLP(d, d, 4, 3, names="layer")
        self.query_embed = nn.Embedding(cfg.num_queries, d)
        self.reference_points = nn.Embedding(cfg.num_queries, 4)
        self.presence_token = nn.Embedding(1, d)
        self.presence_head = MLP(d, d, 1, 3, names="layer")
        self.presence_layer_norm = nn.LayerNorm(d)
        self.ref_point_head = MLP(2 * d, d, d, 2, names="layer")
        self.box_rpb_embed_x = MLP(2, d, cfg.num_heads, 2, names="layer")
        self.box_rpb_embed_y = MLP(2, d, cfg.num_heads, 2, names="layer")

    def forward(self, memory: Tensor, memory_pos: Tensor, size: tuple[int, int], prompt: Tensor,
                prompt_padding_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Decode.

        Args:
            memory: (B, HW, d) DETR-encoder output, row-major over an H x W grid.
            memory_pos: (HW, d) or (B, HW, d) sine position of the grid.
            size: (H, W) of the grid.
            prompt: (B, L, d) prompt tokens; prompt_padding_mask: (B, L) bool, True = padding.
        Returns:
            queries: (B, Q, d) last-layer queries after ``output_layer_norm``;
            boxes: (B, Q, 4) normalised cxcywh boxes (float32), the last refinement;
            presence_logit: (B,) not clamped.
        """
        bsz, dtype = memory.shape[0], memory.dtype
        d = self.query_embed.embedding_dim
        ref = self.reference_points.weight.float().sigmoid()[None].expand(bsz, -1, -1)
        x = torch.cat([self.presence_token.weight, self.query_embed.weight])[None].expand(bsz, -1, -1).to(dtype)
        memory_keys = memory + memory_pos
        queries = x[:, 1:]
        for layer in self.layers:
            sine = sine_coords(ref[..., [1, 0, 2, 3]], d // 2).flatten(-2)  # [cy, cx, w, h] -> (B, Q, 2d)
            query_pos = F.pad(self.ref_point_head(sine.to(dtype)), (0, 0, 1, 0))
            bias = self._box_bias(ref, size, dtype)
            x = layer(x, query_pos, prompt, prompt_padding_mask, memory, memory_keys, bias)
            queries = self.output_layer_norm(x[:, 1:])
            ref = (inverse_sigmoid(ref) + self.box_head(queries).float()).sigmoid()
        presence = self.presence_head(self.presence_layer_norm(x[:, 0])).squeeze(-1)
        return queries, ref, presence

    def _box_bias(self, ref: Tensor, size: tuple[int, int], dtype: torch.dtype) -> Tensor:
        """Log-scale box relative position bias: (B, Q, 4) cxcywh -> (B, heads, 1 + Q, H*W), presence row 0.

        For grid row i at ``i / H`` (no half-pixel shift) and the box's top/bottom edges y0, y1:
        ``By = box_rpb_embed_y(f(i/H - y0), f(i/H - y1))`` with ``f(t) = sign(8t) log2(|8t| + 1) / 3``;
        likewise Bx over columns; bias[h, q, (i, j)] = By[q, i, h] + Bx[q, j, h].
        """
        h, w = size
        xyxy = box_cxcywh_to_xyxy(ref)
        ys = torch.arange(h, device=ref.device, dtype=torch.float32) / h
        xs = torch.arange(w, device=ref.device, dtype=torch.float32) / w
        dy = ys[:, None] - xyxy[:, :, None, 1::2]  # (B, Q, H, 2)
        dx = xs[:, None] - xyxy[:, :, None, 0::2]  # (B, Q, W, 2)
        by = self.box_rpb_embed_y(_log_scale(dy).to(dtype)).permute(0, 3, 1, 2).contiguous()  # (B, heads, Q, H)
        bx = self.box_rpb_embed_x(_log_scale(dx).to(dtype)).permute(0, 3, 1, 2).contiguous()  # (B, heads, Q, W)
        b, heads, q = by.shape[:3]
        # written once, contiguous in the (B, heads, 1 + Q, H*W) order the attention reads
        bias = torch.empty(b, heads, 1 + q, h, w, dtype=by.dtype, device=by.device)
        bias[:, :, 0] = 0
        if needs_autograd(by, bx) or torch.compiler.is_compiling():  # dynamo refuses an out= view
            bias = torch.cat([bias[:, :, :1], by[..., None] + bx[..., None, :]], dim=2)
        else:
            torch.add(by[..., None], bx[..., None, :], out=bias[:, :, 1:])
        return bias.view(b, heads, 1 + q, h * w)


def _log_scale(delta: Tensor) -> Tensor:
    t = delta * 8
    return torch.sign(t) * torch.log2(torch.abs(t) + 1.0) / math.log2(8)
