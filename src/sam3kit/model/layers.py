"""The shared building blocks: one attention, one MLP, one channels-first LayerNorm.

Parameter names follow the released Hugging Face ``facebook/sam3`` checkpoint, so that its tensors load without
renaming (``q_proj``/``k_proj``/``v_proj``/``o_proj``; the MLP naming style is chosen per call site).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, InputError
from .rope import Rope, apply_rope

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections, optional RoPE, optional down-projection.

    The plain form every device, ``torch.compile`` and an exporter run: projections, RoPE, masks, torch's
    ``F.scaled_dot_product_attention``, output projection. ``sam3kit.speed.cpu_attention`` has a CPU variant
    with the same parameters.

    Args:
        dim: width of the queries (and of the output unless ``out_dim`` is given).
        num_heads: number of heads; the internal width is split evenly.
        kv_dim: width of keys/values if different from ``dim`` (memory attention: 64).
        internal_dim: width of q/k/v after projection (SAM two-way transformer: ``dim // 2``).
    """

    def __init__(self, dim: int, num_heads: int, *, kv_dim: Optional[int] = None,
                 internal_dim: Optional[int] = None, out_dim: Optional[int] = None) -> None:
        super().__init__()
        internal_dim = internal_dim or dim
        kv_dim = kv_dim or dim
        if internal_dim % num_heads:
            raise CheckpointError(f"attention width {internal_dim} is not divisible by its {num_heads} heads; "
                                  "check the configuration")
        self.num_heads = num_heads
        self.internal_dim = internal_dim
        self.q_proj = nn.Linear(dim, internal_dim)
        self.k_proj = nn.Linear(kv_dim, internal_dim)
        self.v_proj = nn.Linear(kv_dim, internal_dim)
        self.o_proj = nn.Linear(internal_dim, out_dim or dim)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, *, attn_bias: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None, q_rope: Optional[Rope] = None,
                k_rope: Optional[Rope] = None) -> Tensor:
        """Attend.

        Args:
            q: (B, Nq, dim); k, v: (B, Nk, kv_dim).
            attn_bias: additive float bias broadcastable to (B, heads, Nq, Nk), or a causal/bool mask (True = keep).
            key_padding_mask: (B, Nk) bool, True = padding (ignored key).
            q_rope, k_rope: RoPE tables for the first ``len(table)`` query / key tokens (the rest is left as is).
        Returns:
            (B, Nq, out_dim)
        """
        b, nq, _ = q.shape
        qh, kh, vh = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        if q_rope is not None:
            qh = self.rotate(qh, q_rope)
        if k_rope is not None:
            kh = self.rotate(kh, k_rope)
        out = self.attend(qh, kh, vh, combined_mask(attn_bias, key_padding_mask))
        return self.o_proj(out.transpose(1, 2).reshape(b, nq, self.internal_dim))

    def rotate(self, x: Tensor, rope: Rope) -> Tensor:
        """RoPE on (B, heads, N, head_dim) queries or keys."""
        return apply_rope(x, rope)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        """softmax(q k^T / sqrt(head_dim) + mask) v for (B, heads, N, head_dim) q, k, v; ``mask`` as in
        ``F.scaled_dot_product_attention`` (bool: True = keep; float: added)."""
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def combined_mask(attn_bias: Optional[Tensor], key_padding_mask: Optional[Tensor]) -> Optional[Tensor]:
    """One ``F.scaled_dot_product_attention`` mask from an optional bias or bool mask (True = keep) and an
    optional (B, Nk) key padding mask (True = padding): bool when both are bool, float otherwise."""
    if key_padding_mask is None:
        return attn_bias
    pad = key_padding_mask[:, None, None, :]
    if attn_bias is None:
        return ~pad
    if attn_bias.dtype == torch.bool:
        return attn_bias & ~pad
    return attn_bias.masked_fill(pad, float("-inf"))


class MLP(nn.Module):
    """A stack of Linear layers with an activation between them (none after the last).

    ``names`` picks the parameter naming of the checkpoint at this call site:
    ``"fc"`` -> fc1, fc2, ...; ``"layer"`` -> layer1, layer2, ...; ``"layers"`` -> layers.0, layers.1, ...;
    ``"sam"`` -> proj_in, layers.0 .. layers.{n-3}, proj_out.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, *, act: str = "relu",
                 names: str = "layer") -> None:
        super().__init__()
        if act not in _ACTIVATIONS or names not in ("layers", "sam", "fc", "layer"):
            raise InputError(f"MLP activation {act!r} / naming {names!r}: use one of {sorted(_ACTIVATIONS)} / "
                             "'fc', 'layer', 'layers', 'sam'")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        linears = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
        self.act = _ACTIVATIONS[act]()
        self._order: list[str] = []
        if names == "layers":
            self.layers = nn.ModuleList(linears)
            self._order = [f"layers.{i}" for i in range(num_layers)]
        elif names == "sam":
            self.proj_in = linears[0]
            self.layers = nn.ModuleList(linears[1:-1])
            self.proj_out = linears[-1]
            self._order = ["proj_in"] + [f"layers.{i}" for i in range(num_layers - 2)] + ["proj_out"]
        else:
            for i, lin in enumerate(linears):
                self.add_module(f"{names}{i + 1}", lin)
            self._order = [f"{names}{i + 1}" for i in range(num_layers)]

    def linears(self) -> list[nn.Module]:
        """The Linear layers in order (or what ``sam3kit.speed`` swapped in for them)."""
        return [self.get_submodule(n) for n in self._order]

    def forward(self, x: Tensor) -> Tensor:
        lins = self.linears()
        for i, lin in enumerate(lins):
            x = lin(x)
            if i < len(lins) - 1:
                x = self.act(x)
        return x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of a (B, C, H, W) map (eps 1e-6 as in SAM)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]
