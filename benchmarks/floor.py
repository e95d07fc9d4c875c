"""The kernel floor of a vision encode: the matrix products, attention calls and convolutions that any ViT +
neck implementation built on torch's CPU kernels must run, timed alone.

``kernel_floor(model, pixels)`` returns a callable that issues, with the model's own weights, exactly the
heavy calls of ``Sam3Model.encode_image(pixels, detector=True)``:

- the patch-embedding convolution;
- per block: the q, k, v and output projections and the two MLP products as ``addmm`` on all ``B*g*g`` rows at
  once (the fastest row count for MKL here), into preallocated outputs;
- per block: torch's fused attention over the windows (window blocks) or the whole grid (global blocks);
- the three detector-neck levels (4g, 2g, g), as the modules run them.

For a model whose ViT Linear layers were swapped for int8 ones (``sam3kit.speed.quantize_int8``) the projections
and MLP products are those layers' own calls (ONNX Runtime's dynamic-quantization GEMM, activation quantization
included), so the same function gives the floor of the int8 path.

Everything else a real encode needs is left out: LayerNorms, GELU, RoPE, residual sums, window partitioning,
head reshapes, Python between the calls. The inputs are random tensors of the right shapes (speed does not depend
on the values), so the result is meaningless; only its time is used. It is an optimistic lower bound for an
implementation that keeps torch's kernels (MKL products, torch's flash attention, oneDNN convolutions): a ratio
target below ``floor / transformers`` cannot be met by reorganising the work around those kernels.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def kernel_floor(model, pixels: torch.Tensor) -> Callable[[], None]:
    """A callable running the heavy kernels of one detector vision encode of ``pixels`` (B, 3, S, S)."""
    vit = model.detector_model.vision_encoder.backbone
    neck = model.detector_model.vision_encoder.neck
    cfg = vit.config
    b, g, w, c = pixels.shape[0], cfg.grid_size, cfg.window_size, cfg.hidden_size
    heads = cfg.num_heads
    dh = c // heads
    rows = b * g * g
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(rows, c, generator=gen)
    proj_out = torch.empty(rows, c)
    hidden = torch.empty(rows, cfg.intermediate_size)
    hidden.normal_(generator=gen)
    windows = b * (-(-g // w)) ** 2
    win_qkv = [torch.randn(windows, heads, w * w, dh, generator=gen) for _ in range(3)]
    glob_qkv = [torch.randn(b, heads, g * g, dh, generator=gen) for _ in range(3)]
    trunk = torch.randn(b, g, g, c, generator=gen).permute(0, 3, 1, 2)  # channels-last, as the ViT returns it

    def run() -> None:
        vit.embeddings.patch_embeddings(pixels)
        for layer in vit.layers:
            att, mlp = layer.attention, layer.mlp
            for lin in (att.q_proj, att.k_proj, att.v_proj, att.o_proj):
                _product(lin, tokens, proj_out)
            F.scaled_dot_product_attention(*(win_qkv if layer.window_size > 0 else glob_qkv))
            _product(mlp.fc1, tokens, hidden)
            _product(mlp.fc2, hidden, proj_out)
        for k in (0, 1, 2):
            neck.fpn_layers[k](trunk)

    return run


def _product(lin: torch.nn.Module, x: torch.Tensor, out: torch.Tensor) -> None:
    """``lin(x)``: into ``out`` for an ``nn.Linear``; a swapped layer (int8) runs its own call."""
    if type(lin) is torch.nn.Linear:
        torch.addmm(lin.bias, x, lin.weight.t(), out=out)
    else:
        lin(x)
