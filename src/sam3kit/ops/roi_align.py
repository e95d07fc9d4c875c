"""ROI-align in pure PyTorch, with the semantics of ``torchvision.ops.roi_align``.

torchvision's algorithm: a box (in feature-pixel units after ``spatial_scale``; shifted by -0.5 when
``aligned``) is split into ``oh x ow`` bins; each bin averages ``gh x gw`` bilinear samples placed at the
centres of a regular sub-grid (``g = sampling_ratio``, or ``ceil(box side / bins)`` when it is <= 0).
Without ``aligned`` a box side is at least 1 pixel. A sample further than one pixel outside the map is 0;
otherwise its coordinates are clamped into the map before bilinear interpolation.

Both the sample positions and the bilinear weights separate into a y part and an x part, so every output bin
is ``Ay @ F @ Ax^T`` with per-box interpolation matrices ``Ay`` (oh, H) and ``Ax`` (ow, W) that already
contain the averaging. That is exact, vectorised over boxes, and needs no custom kernel.

The number of samples per bin depends on the boxes, but only those within one pixel of the map count, and
their number per bin is bounded by the map size: each bin enumerates a fixed number of sample slots starting at
its first sample near the map, so no value is read back to the host.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from ..errors import InputError


def roi_align(features: Tensor, boxes: Tensor, output_size: Union[int, tuple[int, int]], *,
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """Pool ``output_size`` bins of every box from its own image.

    Args:
        features: (N, C, H, W) feature maps.
        boxes: (N, K, 4) finite xyxy boxes of image n, in input pixel units (``spatial_scale`` maps them to
            feature pixels). K may be 0.
        output_size: bins per box, ``oh`` or ``(oh, ow)``.
        spatial_scale, sampling_ratio, aligned: as in ``torchvision.ops.roi_align``.
    Returns:
        (N, K, C, oh, ow) in the dtype of ``features``.
    """
    if features.dim() != 4:
        raise InputError(f"features must be (N, C, H, W), got shape {tuple(features.shape)}")
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != features.shape[0]:
        raise InputError(f"boxes must be (N, K, 4) with N = {features.shape[0]}, got shape {tuple(boxes.shape)}")
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    n, c, h, w = features.shape
    k = boxes.shape[1]
    if k == 0:
        return features.new_zeros(n, 0, c, oh, ow)
    b = boxes.float() * spatial_scale - (0.5 if aligned else 0.0)
    ay = _axis_weights(b[..., 1], b[..., 3], oh, h, sampling_ratio, aligned).to(features.dtype)  # (N, K, oh, H)
    ax = _axis_weights(b[..., 0], b[..., 2], ow, w, sampling_ratio, aligned).to(features.dtype)  # (N, K, ow, W)
    rows = torch.einsum("nkph,nchw->nkcpw", ay, features)
    return torch.einsum("nkcpw,nkqw->nkcpq", rows, ax)


def _axis_weights(start: Tensor, end: Tensor, bins: int, size: int, sampling_ratio: int, aligned: bool) -> Tensor:
    """Averaged bilinear interpolation matrix of one axis: (N, K, bins, size).

    ``start``/``end``: (N, K) box edges along this axis in feature pixels (already shifted when aligned).
    """
    length = end - start
    if not aligned:
        length = length.clamp(min=1.0)
    bin_size = length / bins
    if sampling_ratio > 0:
        grid = torch.full_like(length, float(sampling_ratio))
    else:
        grid = torch.ceil(length / bins)
    gs = grid.clamp(min=1.0)[..., None, None]
    bins_ = bin_size[..., None, None]
    p = torch.arange(bins, device=start.device, dtype=start.dtype)
    bin_start = start[..., None, None] + p[:, None] * bins_  # (N, K, bins, 1)
    if sampling_ratio > 0:
        slots, first = sampling_ratio, 0.0
    else:
        # With grid = ceil(bin), the samples of a bin are more than 1/2 pixel apart, and more than
        # (size + 1) / (size + 2) pixels apart when the bin is longer than the map: at most size + 2 of them lie in
        # [-1, size], the only ones that count. Start one slot before the first of them (rounding) and keep
        # two spare slots. (A bin of length <= 0 has no samples: grid <= 0.)
        slots = size + 4
        step = bins_ / gs
        ok = step > 0
        first = ((-1.0 - bin_start) / torch.where(ok, step, 1.0) - 0.5).ceil_().sub_(1.0).clamp_(min=0.0)
        first = torch.where(ok, first, 0.0)
    i = torch.arange(slots, device=start.device, dtype=start.dtype) + first  # (N, K, bins, slots) sample indices
    # sample coordinates, same expression as torchvision: start + p * bin + (i + .5) * bin / grid
    coord = bin_start + (i + 0.5) * bins_ / gs
    used = (i < grid[..., None, None]) & (coord >= -1.0) & (coord <= size)
    coord = torch.where(used, coord, 0.0).clamp_(min=0.0)
    low = coord.floor().clamp_(max=size - 1)
    at_edge = low >= size - 1
    coord = torch.where(at_edge, low, coord)
    high = torch.where(at_edge, low, low + 1)
    frac = coord.sub_(low)
    scale = used.to(frac.dtype).div_(gs)
    # every sample adds its two bilinear weights to its bin's row, in sample order
    index = torch.stack([low, high], dim=-1).flatten(-2).long()
    values = torch.stack([(1.0 - frac).mul_(scale), frac.mul(scale)], dim=-1).flatten(-2)
    return values.new_zeros(*values.shape[:-1], size).scatter_add_(-1, index, values)
