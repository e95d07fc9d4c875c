"""The synthetic clip of the concept golden files: coloured shapes that move, appear, disappear and pass in front
of each other on a smooth seeded background, uint8 RGB frames at the model size (so that no resize enters), with the
exact visible mask of every shape (used to place the exemplar box and the refinement click)."""
from __future__ import annotations

import torch

from .builder import T
from .video_inputs import _background, _disc, _square

CLIP_SEED = 4         # background and pixel noise (the tracker golden clips use 3)
S = T["image_size"]   # frames are S x S: the model size
NUM_FRAMES = 24

# name -> kind, size (disc radius / square half side), colour, first and last frame it is on screen (inclusive),
# centre at the first and at the last of those frames (linear motion). Drawn in this order: later ones cover earlier.
SHAPES = {
    "red_disc": dict(kind="disc", size=15.0, rgb=(225.0, 40.0, 35.0), frames=(0, 23),
                     path=((20.0, 40.0), (92.0, 56.0))),
    "green_disc": dict(kind="disc", size=11.0, rgb=(40.0, 200.0, 60.0), frames=(7, 15),
                       path=((24.0, 92.0), (40.0, 84.0))),
    "blue_square": dict(kind="square", size=14.0, rgb=(30.0, 60.0, 220.0), frames=(3, 20),
                        path=((104.0, 48.0), (20.0, 52.0))),
    "yellow_square": dict(kind="square", size=9.0, rgb=(235.0, 215.0, 40.0), frames=(13, 23),
                          path=((86.0, 18.0), (70.0, 22.0))),
}
PIXEL_NOISE = 6.0


def _centre(spec, t):
    a, b = spec["frames"]
    u = 0.0 if b == a else (t - a) / (b - a)
    (x0, y0), (x1, y1) = spec["path"]
    return (x0 + (x1 - x0) * u, y0 + (y1 - y0) * u)


def make_clip(seed=CLIP_SEED):
    """Frames (T, S, S, 3) uint8, the visible mask of each shape (T, S, S) bool (False when off screen or covered),
    and each shape's centre per frame (None when off screen)."""
    g = torch.Generator().manual_seed(seed)
    bg = _background(g)
    frames = []
    visible = {name: [] for name in SHAPES}
    centres = []
    for t in range(NUM_FRAMES):
        img = bg.clone()
        drawn = {}
        cen = {}
        for name, spec in SHAPES.items():
            a, b = spec["frames"]
            if not a <= t <= b:
                drawn[name] = torch.zeros(S, S, dtype=torch.bool)
                cen[name] = None
                continue
            cx, cy = _centre(spec, t)
            m = _disc(cx, cy, spec["size"]) if spec["kind"] == "disc" else _square(cx, cy, spec["size"])
            for c in range(3):
                img[c][m] = spec["rgb"][c]
            for other in drawn:  # this shape covers the ones drawn before it
                drawn[other] = drawn[other] & ~m
            drawn[name] = m
            cen[name] = (cx, cy)
        img = img + torch.randn(3, S, S, generator=g) * PIXEL_NOISE
        frames.append(img.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous())
        for name in SHAPES:
            visible[name].append(drawn[name])
        centres.append(cen)
    return dict(frames=torch.stack(frames), masks={n: torch.stack(v) for n, v in visible.items()}, centres=centres)


def box_xyxy(mask):
    """Pixel xyxy box of a bool mask with outer pixel edges (x1, y1, x2 + 1, y2 + 1)."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def clip_summary(clip):
    """Per shape: frames on screen, and the frames where it is partly or fully covered by another shape."""
    out = {}
    for name, spec in SHAPES.items():
        a, b = spec["frames"]
        full = {}
        for t in range(a, b + 1):
            cx, cy = _centre(spec, t)
            m = _disc(cx, cy, spec["size"]) if spec["kind"] == "disc" else _square(cx, cy, spec["size"])
            vis = int(clip["masks"][name][t].sum())
            tot = int(m.sum())
            if vis < tot:
                full[t] = round(1.0 - vis / tot, 3)
        out[name] = dict(spec, on_screen=[a, b], covered_fraction_by_frame={str(k): v for k, v in full.items()})
    return out
