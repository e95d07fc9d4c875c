"""The shared building blocks: one attention, one MLP, one channels-first LayerNorm.

Parameter names follow the released Hugging Face ``facebook/sam3`` checkpoint, so that its tensors load without
renaming (``q_proj``/``k_proj``/``v_proj``/``o_proj``; the MLP naming style is chosen per call site).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.autograd import needs_autograd
from .rope import Rope, apply_rope

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections, optional RoPE, optional down-projection.

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
            raise ValueError(f"internal_dim {internal_dim} is not divisible by num_heads {num_heads}")
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
        if q_rope is None and k_rope is None and k.shape[1] <= _SMALL_SIDE and nq >= _MANY_QUERIES:
            return self._few_keys(q, k, v, attn_bias, key_padding_mask)
        qh, kh, vh = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        if q_rope is not None:
            qh = apply_rope(qh, q_rope)
        if k_rope is not None:
            kh = apply_rope(kh, k_rope)
        mask = attn_bias
        if key_padding_mask is not None:
            pad = key_padding_mask[:, None, None, :]
            if mask is None:
                mask = ~pad
            elif mask.dtype == torch.bool:
                mask = mask & ~pad
            else:
                mask = mask.masked_fill(pad, float("-inf"))
        if min(nq, kh.shape[-2]) <= _SMALL_SIDE:
            out = _attention_by_products(qh, kh, vh, mask)
        else:
            out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, nq, self.internal_dim))

    def _few_keys(self, q: Tensor, k: Tensor, v: Tensor, attn_bias: Optional[Tensor],
                  key_padding_mask: Optional[Tensor]) -> Tensor:
        """The same attention for many queries over few keys (5184 image tokens over a 7-token prompt), with the
        query projection folded into the keys and the output projection into the values: per head,
        ``(Wq x + bq) . k_j = x . (Wq^T k_j) + bq . k_j`` and ``Wo_h sum_j a_j v_j = sum_j a_j (Wo_h v_j)``, so the
        queries meet one (dim, heads * Nk) matrix instead of two (dim, internal) projections. Exact algebra."""
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


_SMALL_SIDE = 64
"""Attention with at most this many queries or keys is computed as two batched matrix products: torch's fused
CPU kernel is slow when one side is this short (5184 image tokens over 8 prompt tokens: 6 ms against 1 ms)."""
_MANY_QUERIES = 256
"""With at most ``_SMALL_SIDE`` keys and at least this many queries, ``Attention._few_keys`` folds the projections."""


def _attention_by_products(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
    """softmax(q k^T / sqrt(dh) + mask) v for (B, h, Nq, dh) x (B, h, Nk, dh); ``mask`` as in
    ``F.scaled_dot_product_attention`` (bool: True = keep; float: added)."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    return torch.softmax(scores, dim=-1) @ v


class MLP(nn.Module):
    """A stack of Linear layers with an activation between them (none after the last).

    ``names`` picks the parameter naming of the checkpoint at this call site:
    ``"fc"`` -> fc1, fc2, ...; ``"layer"`` -> layer1, layer2, ...; ``"layers"`` -> layers.0, layers.1, ...;
    ``"sam"`` -> proj_in, layers.0 .. layers.{n-3}, proj_out.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, *, act: str = "relu",
                 names: str = "layer") -> None:
        super().__init__()
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
        elif names in ("fc", "layer"):
            for i, lin in enumerate(linears):
                self.add_module(f"{names}{i + 1}", lin)
            self._order = [f"{names}{i + 1}" for i in range(num_layers)]
        else:
            raise ValueError(f"unknown MLP naming {names!r}")

    def linears(self) -> list[nn.Linear]:
        return [self.get_submodule(n) for n in self._order]

    def forward(self, x: Tensor) -> Tensor:
        lins = self.linears()
        for i, lin in enumerate(lins):
            x = lin(x)
            if i < len(lins) - 1:
                x = self.act(x)
        return x

    def add_into(self, x: Tensor, inp: Tensor, *, rows: int = 576) -> Tensor:
        """``x + self(inp)``, written into ``x`` (a residual stream the caller owns) and returned.

        Without autograd, a two-layer MLP runs in blocks of ``rows`` rows through one reused hidden buffer, with
        the activation in place and the second product accumulated straight into ``x``: no full-size hidden
        activation (98 MB per ViT block at release, twice) is allocated, the hidden rows of a block stay in the CPU
        cache, and the residual sum is not a separate pass. The same values up to rounding. Layers swapped for
        another kind (int8) take part when they can write into a given tensor (``layer(x, out=...)``, and a
        ``block_rows`` attribute: the least rows per call worth making); their second product goes through a
        second reused buffer. Otherwise (autograd, another depth, other layers, a non-contiguous ``x``) it is
        ``x + self(inp)``, a new tensor.
        """
        lins = self.linears()
        if (len(lins) != 2 or not all(_writes_into(m) for m in lins) or not x.is_contiguous()
                or needs_autograd(x, inp, *(p for m in lins for p in m.parameters()))):
            return x + self(inp)
        first, second = lins
        rows = max([rows] + [getattr(m, "block_rows", 0) for m in lins])
        n = x.numel() // max(x.shape[-1], 1)
        flat_x, flat_in = x.view(n, x.shape[-1]), inp.reshape(n, inp.shape[-1])
        hidden = torch.empty(min(rows, n), first.out_features, dtype=x.dtype, device=x.device)
        outs = None if type(second) is nn.Linear else torch.empty(min(rows, n), x.shape[-1], dtype=x.dtype,
                                                                   device=x.device)
        for i in range(0, n, rows):
            block_in, block_x = flat_in[i:i + rows], flat_x[i:i + rows]
            h = hidden[:block_in.shape[0]]
            if type(first) is not nn.Linear:
                first(block_in, out=h)
            elif first.bias is None:
                torch.mm(block_in, first.weight.t(), out=h)
            else:
                torch.addmm(first.bias, block_in, first.weight.t(), out=h)
            if isinstance(self.act, nn.GELU):
                torch.ops.aten.gelu_(h, approximate=self.act.approximate)
            else:
                torch.relu_(h)
            if outs is not None:
                block_x.add_(second(h, out=outs[:h.shape[0]]))
                continue
            block_x.addmm_(h, second.weight.t())
            if second.bias is not None:
                block_x.add_(second.bias)
        return x


def _writes_into(layer: nn.Module) -> bool:
    """A plain ``nn.Linear``, or a swapped layer that can write into a given tensor (``block_rows`` marks it)."""
    return type(layer) is nn.Linear or hasattr(layer, "block_rows")


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
