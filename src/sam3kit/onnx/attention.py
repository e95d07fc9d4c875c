"""``ChunkedAttention``: the model's ``Attention`` with its score matrix computed a block of queries at a time, for the
exported graphs.

torch's fused attention never holds the (heads, Nq, Nk) score matrix; traced into ONNX it becomes MatMul, Softmax,
MatMul, and ONNX Runtime holds that matrix (and the Softmax output beside it) for the whole attention. For the ViT's
global blocks at the released size (16 heads over 72 x 72 = 5184 tokens) each is 1.7 GB per image. Cutting the
queries into blocks changes no number (every query row's softmax sees all keys: the same operations per row) and
lets ONNX Runtime reuse one block's buffers for the next, so the graph holds at most ``max_scores`` score elements
per image at a time.

Export only: ``export_onnx`` swaps it in (``chunked_attention``) while it traces, and the plain modules back after;
the block sizes are fixed when the graph is traced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Optional

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..model.layers import Attention
from ..speed.swap import swap_modules

MAX_SCORES = 1 << 26
"""Default largest score block per image, in elements (256 MiB of float32): the ViT's global attention at the
released size runs in 7 blocks, the DETR encoder's in 4; every other attention of the model fits in one."""


STATIC_QUERIES = ("detector_model.vision_encoder.backbone", "detector_model.detr_encoder")
"""The parts of the model whose attentions have a fixed number of queries in every graph (the image tokens of the
ViT and of the DETR encoder), the only ones swapped: a block split bakes the query count into the graph, which
would break a dynamic query axis (text lengths, prompt counts). Key counts may stay dynamic (the DETR encoder's
cross-attention to the text): keys are never split."""


class ChunkedAttention(Attention):
    """``Attention`` computing at most ``max_scores`` score elements per batch item at once (see the module
    docstring); built by ``chunked_attention``, not directly."""

    max_scores: int = MAX_SCORES

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        # Python ints while tracing too: the blocks are fixed in the graph (the query count is, see STATIC_QUERIES)
        heads, nq, nk = int(q.shape[1]), int(q.shape[-2]), int(k.shape[-2])
        blocks = -(-heads * nq * nk // self.max_scores)
        if blocks <= 1:
            return super().attend(q, k, v, mask)
        size = -(-nq // blocks)
        per_query = mask is not None and mask.dim() >= 2 and mask.shape[-2] == nq  # else broadcast over queries
        out = []
        for start in range(0, nq, size):
            m = mask[..., start:start + size, :] if per_query else mask
            out.append(super().attend(q[:, :, start:start + size], k, v, m))
        return torch.cat(out, dim=2)


@contextlib.contextmanager
def chunked_attention(model: nn.Module, max_scores: int = MAX_SCORES) -> Iterator[list[nn.Module]]:
    """Within the block, every plain ``Attention`` of ``model``'s ``STATIC_QUERIES`` parts is a ``ChunkedAttention``
    holding the same parameters, with blocks of at most ``max_scores`` score elements; the plain modules come back
    after. Yields the swapped parts."""
    if not isinstance(max_scores, int) or isinstance(max_scores, bool) or max_scores < 1:
        raise InputError(f"max_attention_scores must be a positive integer (score elements), got {max_scores!r}")
    parts = []
    for name in STATIC_QUERIES:
        try:
            parts.append(model.get_submodule(name))
        except AttributeError:  # a model without that part
            continue
    for part in parts:
        swap_modules(part, {Attention: ChunkedAttention})
        for m in part.modules():
            if type(m) is ChunkedAttention:
                m.max_scores = max_scores
    try:
        yield parts
    finally:
        for part in parts:
            for m in part.modules():
                if type(m) is ChunkedAttention:
                    del m.max_scores
            swap_modules(part, {ChunkedAttention: Attention})
