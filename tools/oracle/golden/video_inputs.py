"""The synthetic clips of the video golden files: moving shapes on a smooth seeded background, uint8 RGB frames at the
model size (so that no resize enters), with the exact masks of the shapes (used for the mask prompt and to place
clicks and boxes)."""
from __future__ import annotations

import math

import torch

from .builder import T

VIDEO_SEED = 3        # background and pixel noise of the clips
S = T["image_size"]   # frames are S x S: the model size


def _background(g, s=S):
    base = torch.rand(1, 3, 5, 5, generator=g) * 200 + 28
    return torch.nn.functional.interpolate(base, size=(s, s), mode="bicubic", align_corners=False)[0]


def _disc(cx, cy, r, s=S):
    yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32),
                            indexing="ij")
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def _square(cx, cy, half, s=S):
    yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32),
                            indexing="ij")
    return ((xx + 0.5 - cx).abs() <= half) & ((yy + 0.5 - cy).abs() <= half)


# One 20-frame clip: the disc and the square move along these paths (centre at the first and at the last frame).
# "clip12" is its first 12 frames (stored as a view of the same tensor, so cases.pt holds the pixels once).
CLIP = dict(num_frames=20, disc=((26.0, 34.0), (88.0, 70.0)), square=((88.0, 88.0), (30.0, 80.0)))
CLIPS = {"clip20": dict(CLIP), "clip12": dict(CLIP, first_frames_of="clip20", num_frames=12)}
DISC_R = 16.0
SQUARE_HALF = 14.0
DISC_RGB = (225.0, 40.0, 35.0)
SQUARE_RGB = (30.0, 60.0, 220.0)


def _lerp(a, b, u):
    return (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)


def make_clip(seed=VIDEO_SEED):
    """Frames (T, S, S, 3) uint8 and the visible masks of the two shapes (T, S, S) bool each (the square is drawn
    over the disc), plus the shapes' centres per frame."""
    spec = CLIP
    n = spec["num_frames"]
    g = torch.Generator().manual_seed(seed)
    bg = _background(g)
    frames, disc_masks, square_masks, centres = [], [], [], []
    for t in range(n):
        u = t / (n - 1)
        # a slight wobble so that the motion is not exactly linear
        dc = _lerp(*spec["disc"], u)
        dc = (dc[0], dc[1] + 3.0 * math.sin(2.0 * math.pi * u))
        sc = _lerp(*spec["square"], u)
        disc = _disc(dc[0], dc[1], DISC_R)
        square = _square(sc[0], sc[1], SQUARE_HALF)
        img = bg.clone()
        for m, rgb in ((disc, DISC_RGB), (square, SQUARE_RGB)):
            for c in range(3):
                img[c][m] = rgb[c]
        img = img + torch.randn(3, S, S, generator=g) * 6.0
        frames.append(img.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous())
        disc_masks.append(disc & ~square)
        square_masks.append(square)
        centres.append(dict(disc=dc, square=sc))
    return dict(frames=torch.stack(frames), disc=torch.stack(disc_masks), square=torch.stack(square_masks),
                centres=centres)


def make_clips():
    """Both clips; clip12's tensors are views of clip20's."""
    c20 = make_clip()
    c12 = dict(frames=c20["frames"][:12], disc=c20["disc"][:12], square=c20["square"][:12],
               centres=c20["centres"][:12])
    return {"clip20": c20, "clip12": c12}


def pixel_values(frames_u8):
    """(T, S, S, 3) uint8 -> (T, 3, S, S) float32 normalised frames: the official image path's formula
    ``(u8 * (1/255) - 0.5) / 0.5`` (the official video loaders compute the same in float16; the oracle keeps
    float32, see meta.json)."""
    x = frames_u8.permute(0, 3, 1, 2).to(torch.float32)
    return ((x * (1.0 / 255) - 0.5) / 0.5).contiguous()


def box_of(mask):
    """Pixel xyxy box (x1, y1, x2, y2) of a bool mask, outer pixel edges."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
