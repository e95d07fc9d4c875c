"""The residual MLP step ``x + MLP(LN x)`` of the ViT and DETR-encoder layers, in row blocks written into ``x``.

Without autograd, a two-layer MLP runs in blocks of rows through one reused hidden buffer, with the activation in
place and the second product accumulated straight into the residual stream ``x``: no full-size hidden activation
is allocated (5184 x 4736 fp32 values, 98 MB, per ViT layer at the released size, twice), the hidden
rows of a block stay in the CPU cache, and the residual sum is not a separate pass. The same values up to
rounding. ``sam3kit.speed.cpu`` swaps ``BlockedViTLayer`` / ``BlockedEncoderLayer`` in for the model's layers.

Layers swapped for another kind take part when they can write into a given tensor: ``layer(x, out=...)`` and a
``block_rows`` attribute, the least rows per call worth making (``Int8Linear`` of ``sam3kit.speed.int8``); their
second product goes through a second reused buffer. Otherwise (autograd, another depth, other layers, a
non-contiguous stream) the step is the plain ``x + mlp(inp)``, a new tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..model.detr_encoder import EncoderLayer
from ..model.layers import MLP
from ..model.vit import ViTLayer
from ..ops.autograd import needs_autograd

VIT_ROWS = 576
"""Row block of the ViT MLP (one 24 x 24 window of tokens)."""
ENCODER_ROWS = 2592
"""Row block of the DETR-encoder FFN (half the 72 x 72 image tokens; its hidden layer is 2048 wide)."""


def add_mlp_into(mlp: MLP, x: Tensor, inp: Tensor, *, rows: int) -> Tensor:
    """``x + mlp(inp)``, written into ``x`` (a residual stream the caller owns) and returned; or, when the blocked
    form does not apply (see the module docstring), ``x + mlp(inp)`` as a new tensor.

    Args:
        mlp: a two-layer ``MLP`` (ReLU or GELU between the layers).
        x: (..., d) residual stream, contiguous; inp: (..., d_in) the MLP input with the same leading shape.
        rows: rows per block, raised to the ``block_rows`` of swapped layers.
    """
    lins = mlp.linears()
    if (len(lins) != 2 or not all(_writes_into(m) for m in lins) or not x.is_contiguous()
            or needs_autograd(x, inp, *(p for m in lins for p in m.parameters()))):
        return x + mlp(inp)
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
        if isinstance(mlp.act, nn.GELU):
            torch.ops.aten.gelu_(h, approximate=mlp.act.approximate)
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


class BlockedViTLayer(ViTLayer):
    """``ViTLayer`` whose MLP step is written into the residual stream in row blocks."""

    def mlp_step(self, x: Tensor) -> Tensor:
        return add_mlp_into(self.mlp, x, self.layer_norm2(x), rows=VIT_ROWS)


class BlockedEncoderLayer(EncoderLayer):
    """``EncoderLayer`` (DETR and geometry encoders) whose FFN step is written into the residual stream in row
    blocks."""

    def mlp_step(self, x: Tensor) -> Tensor:
        return add_mlp_into(self.mlp, x, self.layer_norm3(x), rows=ENCODER_ROWS)
