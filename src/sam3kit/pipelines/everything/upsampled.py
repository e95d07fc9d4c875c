"""Pixel counts and boxes of upsampled masks, computed without upsampling them.

SAM 1 scores a mask (stability) and boxes it on its logits upsampled to the image size. Bilinear upsampling
(``align_corners=False``, as ``predict`` upsamples) makes every output row a blend of two low-resolution rows
(``v`` below: image height x low-resolution width), and along such a row the values between two low-resolution
pixel centres lie on a straight line. So, for one threshold, the output pixels of a row that sample a segment
between two centres are all above it when both ends are, none when neither is, and otherwise one run whose end
follows from where the line crosses the threshold. Counting whole segments is one product with the segment
lengths; only the few segments that cross (the mask's boundary) need arithmetic. That gives the exact count of
``upsample(logits) > threshold`` and the exact box of the mask at the image size at about the cost of the blended
rows (image height x low-resolution width) instead of the upsampled mask (image height x image width).

The blended rows are float32 as in ``F.interpolate``, the crossings float64: an output pixel whose upsampled logit
lies within float32 rounding (about 1e-7 of its size) of a threshold may be counted differently than there.

Sampling follows PyTorch's: output pixel j of a side of n source pixels upsampled to m samples the source
coordinate max(0, (j + 0.5) * n / m - 0.5), between source pixels i = its floor and min(i + 1, n - 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

@dataclass
class _Side:
    """How m output pixels sample a side of n source pixels.

    first, last: (n,) int64, the output pixels whose sample lies in segment c, from centre c (included) towards
        c + 1 (the last segment: at or past the last centre); empty where last < first. The ``clamped`` first
        output pixels, whose sample is clamped to the first centre, are in no segment.
    length: (n,) float32 = last - first + 1 (0 if empty).
    """

    n: int
    m: int
    first: Tensor
    last: Tensor
    length: Tensor
    clamped: int

    @classmethod
    def of(cls, n: int, m: int, device: torch.device) -> "_Side":
        j = torch.arange(m, dtype=torch.float64, device=device)
        raw = (j + 0.5) * (n / m) - 0.5
        clamped = int((raw < 0).sum())
        seg = raw.clamp(min=0.0).floor().long().clamp(max=n - 1)
        seg = torch.where(raw < 0, -1, seg)
        c = torch.arange(n, device=device)
        first = torch.searchsorted(seg, c, right=False)  # seg is non-decreasing
        last = torch.searchsorted(seg, c, right=True) - 1
        length = (last - first + 1).clamp(min=0).float()
        return cls(n, m, first, last, length, clamped)


def _vertical(n: int, m: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Rows blended for each of m output rows over n source rows: (i0, i1, lam), lam float32 as PyTorch's."""
    j = torch.arange(m, dtype=torch.float32, device=device)
    src = ((j + 0.5) * (n / m) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    return i0, i1, src - i0


def _above(v: Tensor, ts: Tensor, side: _Side, cl: int, cr: int, e: int) -> tuple[Tensor, Tensor, int, int]:
    """Output pixels above each threshold ``ts`` (T,) in the blended rows ``v`` (H', cr - cl + 1), which hold the
    source columns cl..cr of some output rows.

    Segments cl..cr are counted, the last one as if it ended at column cr (exact when column cr + 1 lies at or
    below every threshold, as the caller ensures). Returns the totals (T,) int64, the per-row counts (H',) of
    threshold ``e`` and its first and last output column (``side.m`` and -1 where none)."""
    H, n = v.shape
    first, last, length = side.first[cl:cr + 1], side.last[cl:cr + 1], side.length[cl:cr + 1]
    up = v[None] > ts[:, None, None]  # (T, H', n)
    nxt = torch.cat([up[..., 1:], up[..., -1:]], dim=-1)  # the segment's other end (the last: itself)
    whole = up & nxt
    count = (whole.float() @ length).long()  # (T, H'); exact: integers below 2^24
    t_idx, r_idx, c_idx = torch.nonzero(up ^ nxt).unbind(1)  # the segments that cross a threshold
    a = v[r_idx, c_idx].double()
    b = v[r_idx, c_idx + 1].double()  # a crossing segment is never the last column
    q = ((ts.double()[t_idx] - a) / (b - a) + (c_idx + cl) + 0.5) / (side.n / side.m) - 0.5  # crossing, output
    f, l_ = first[c_idx], last[c_idx]
    rising = b > a  # below at the segment's start, above after the crossing
    lo = torch.where(rising, torch.maximum(f, torch.floor(q).long() + 1), f)
    hi = torch.where(rising, l_, torch.minimum(l_, torch.ceil(q).long() - 1))
    part = (hi - lo + 1).clamp(min=0)
    count = count.index_put((t_idx, r_idx), part, accumulate=True)
    head = cl == 0 and side.clamped > 0  # the first output pixels repeat source column 0
    if head:
        count = count + up[:, :, 0].long() * side.clamped
    cols = whole[e].any(dim=0) & (length > 0)
    x0 = int(first[cols].min()) if bool(cols.any()) else side.m
    x1 = int(last[cols].max()) if bool(cols.any()) else -1
    ok = (part > 0) & (t_idx == e)
    if bool(ok.any()):
        x0, x1 = min(x0, int(lo[ok].min())), max(x1, int(hi[ok].max()))
    if head and bool(up[e, :, 0].any()):
        x0, x1 = 0, max(x1, side.clamped - 1)
    return count.sum(dim=1), count[e], x0, x1


def upsampled_counts(logits: Tensor, height: int, width: int, thresholds: Sequence[float],
                     box_threshold: float = 0.0) -> tuple[Tensor, Tensor]:
    """Counts and boxes of ``F.interpolate(logits, (height, width), bilinear, align_corners=False) > t``.

    Each mask is worked on inside its low-resolution box of logits above the lowest threshold (one pixel wider):
    outside it every output pixel lies at or below every threshold.

    Args:
        logits: (N, h, w) low-resolution logits.
        height, width: the size the masks are upsampled to.
        thresholds: T thresholds to count pixels above.
        box_threshold: the threshold of the mask whose box is returned.
    Returns:
        counts: (N, T) int64 pixels above each threshold (on the CPU);
        boxes: (N, 4) int64 inclusive xyxy of the pixels above ``box_threshold`` (zeros for an empty mask).
    """
    from .boxes import mask_boxes

    n, h, w = logits.shape
    dev = logits.device
    counts = torch.zeros((n, len(thresholds)), dtype=torch.int64)
    boxes = torch.zeros((n, 4), dtype=torch.int64)
    if n == 0:
        return counts, boxes
    i0, i1, lam = _vertical(h, height, dev)
    side = _Side.of(w, width, dev)
    ts = torch.tensor([float(t) for t in thresholds] + [float(box_threshold)], dtype=torch.float32, device=dev)
    lg_all = logits.float()
    pos = lg_all > float(ts.min())
    nonempty = pos.flatten(1).any(dim=1).tolist()
    spans = mask_boxes(pos).tolist()
    for k in range(n):
        if not nonempty[k]:
            continue
        c0, r0, c1, r1 = spans[k]
        rl, rr, cl, cr = max(0, r0 - 1), min(h - 1, r1 + 1), max(0, c0 - 1), min(w - 1, c1 + 1)
        # output rows that blend a source row of r0..r1 (the others lie at or below every threshold)
        j_lo = int(torch.searchsorted(i1, torch.tensor(r0, device=dev)))
        j_hi = int(torch.searchsorted(i0, torch.tensor(r1, device=dev), right=True)) - 1
        if j_hi < j_lo:
            continue
        src = lg_all[k, rl:rr + 1, cl:cr + 1]
        wt = lam[j_lo:j_hi + 1, None]
        v = src[i0[j_lo:j_hi + 1] - rl] * (1 - wt) + src[i1[j_lo:j_hi + 1] - rl] * wt  # as F.interpolate blends
        total, per_row, x0, x1 = _above(v, ts, side, cl, cr, len(thresholds))
        counts[k] = total[:-1].cpu()
        rows = torch.nonzero(per_row > 0).flatten()
        if len(rows):
            boxes[k] = torch.tensor([x0, j_lo + int(rows[0]), x1, j_lo + int(rows[-1])])
    return counts, boxes
