"""Convolutions written as matrix products where torch's CPU kernels are slow for SAM's shapes."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from .autograd import needs_autograd


def conv_transpose2x2(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, *,
                      add: Optional[Tensor] = None) -> Tensor:
    """``nn.ConvTranspose2d(kernel_size=2, stride=2)`` on a channels-last map, as one matrix product.

    Every input pixel writes its own 2 x 2 output block (the kernels do not overlap), so the layer is
    ``x @ W`` with ``W`` (Cin, 2 * 2 * Cout) followed by a reshuffle of the blocks into place; ``add`` is summed
    during that reshuffle (one pass over the output instead of two).

    Args:
        x: (B, H, W, Cin) channels-last input (any strides).
        weight: (Cin, Cout, 2, 2), as ``nn.ConvTranspose2d`` stores it; bias: (Cout,) or None.
        add: optional (B or 1, 2H, 2W, Cout) channels-last tensor added to the output.
    Returns:
        (B, 2H, 2W, Cout) contiguous, channels last.
    """
    if weight.dim() != 4 or weight.shape[2:] != (2, 2) or weight.shape[0] != x.shape[-1]:
        raise InputError(f"weight must be (Cin={x.shape[-1]}, Cout, 2, 2), got {tuple(weight.shape)}")
    b, h, w, cin = x.shape
    cout = weight.shape[1]
    mat = weight.permute(0, 2, 3, 1).reshape(cin, 4 * cout)  # columns ordered (di, dj, co)
    flat = x.reshape(-1, cin)
    y = flat @ mat if bias is None else torch.addmm(bias.repeat(4), flat, mat)
    blocks = y.view(b, h, w, 2, 2, cout).permute(0, 1, 3, 2, 4, 5)  # (B, H, di, W, dj, Cout) view
    if add is not None and (add.shape[1:] != (2 * h, 2 * w, cout) or add.shape[0] not in (1, b)):
        raise InputError(f"add must be ({b} or 1, {2 * h}, {2 * w}, {cout}), got {tuple(add.shape)}")
    add6 = None if add is None else add.reshape(add.shape[0], h, 2, w, 2, cout)
    if needs_autograd(y, add):
        out6 = blocks if add6 is None else blocks + add6  # differentiable path (out= is not)
        return out6.reshape(b, 2 * h, 2 * w, cout).contiguous()
    out = torch.empty(b, 2 * h, 2 * w, cout, dtype=y.dtype, device=y.device)
    if add6 is None:
        out.view(b, h, 2, w, 2, cout).copy_(blocks)
    else:
        torch.add(blocks, add6, out=out.view(b, h, 2, w, 2, cout))
    return out


# Nearest 2x upsampling repeats every input row twice, so a 3-tap kernel over the upsampled rows reads only two
# input rows: output row 2i reads rows (i-1, i) with taps (k0, k1 + k2), output row 2i+1 reads rows (i, i+1) with
# taps (k0 + k1, k2). _PHASE_TAPS[a] maps the 3 kernel taps to those 2 input rows (same for columns).
_PHASE_TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def conv3x3_after_upsample2x(y: Tensor, weight: Tensor, *, add: Optional[Tensor] = None) -> Tensor:
    """``F.conv2d(F.interpolate(y, scale_factor=2, mode="nearest"), weight, padding=1)`` without the upsampled map.

    Each of the four output phases (row parity a, column parity b) is a 2 x 2 convolution of ``y`` itself, so one
    convolution with 4 x Cout outputs at the input resolution does the work: 16 taps per input pixel instead of
    9 taps per output pixel (2.25x fewer operations). The same function up to rounding.

    Args:
        y: (B, Cin, h, w); weight: (Cout, Cin, 3, 3) (no bias: add it through ``add`` or afterwards).
        add: optional (B or 1, Cout, 2h, 2w) added to the output during the interleave (one pass, not two).
    Returns:
        (B, Cout, 2h, 2w) contiguous.
    """
    if weight.dim() != 4 or weight.shape[2:] != (3, 3) or weight.shape[1] != y.shape[1]:
        raise InputError(f"weight must be (Cout, Cin={y.shape[1]}, 3, 3), got {tuple(weight.shape)}")
    b, cin, h, w = y.shape
    cout = weight.shape[0]
    if add is not None and (add.shape[1:] != (cout, 2 * h, 2 * w) or add.shape[0] not in (1, b)):
        raise InputError(f"add must be ({b} or 1, {cout}, {2 * h}, {2 * w}), got {tuple(add.shape)}")
    taps = torch.tensor(_PHASE_TAPS, dtype=weight.dtype, device=weight.device)  # (2 phases, 2 rows, 3 taps)
    kernels = torch.einsum("apr,oirs,bqs->aboipq", taps, weight, taps).reshape(4 * cout, cin, 2, 2)
    z = F.conv2d(F.pad(y, (1, 1, 1, 1)), kernels).view(b, 2, 2, cout, h + 1, w + 1)
    phase = lambda t, a, c: t[:, :, :, a, :, c]  # noqa: E731  (B, C, h, w) view of one phase of (B, C, h, 2, w, 2)
    add6 = None if add is None else add.view(add.shape[0], cout, h, 2, w, 2)
    if needs_autograd(z, add):
        parts = torch.stack([torch.stack([z[:, a, c, :, a:a + h, c:c + w] for c in (0, 1)], dim=-1)
                             for a in (0, 1)], dim=-3)  # (B, C, h, 2, w, 2), differentiable
        out = parts if add6 is None else parts + add6
        return out.reshape(b, cout, 2 * h, 2 * w)
    out = torch.empty(b, cout, h, 2, w, 2, dtype=z.dtype, device=z.device)
    for a in (0, 1):
        for c in (0, 1):
            src = z[:, a, c, :, a:a + h, c:c + w]
            if add6 is None:
                phase(out, a, c).copy_(src)
            else:
                torch.add(src, phase(add6, a, c), out=phase(out, a, c))
    return out.view(b, cout, 2 * h, 2 * w)
