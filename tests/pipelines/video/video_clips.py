"""Tiny models and synthetic clips for the video pipeline tests."""

from __future__ import annotations

import numpy as np
import torch

from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model

from fixtures.weights import randomize_


def tiny_video_model(seed: int = 0, *, d: int = 64, image_size: int = 112, obj_score_bias: float = 2.0) -> Sam3Model:
    """A tiny random SAM 3 whose tracker sees objects: std 0.1 tracker weights (prompts visibly change the
    masks) and a positive bias on the object-score head (random weights give object scores near 0)."""
    cfg = Sam3Config.tiny(d=d)
    if image_size != 112:
        cfg = cfg.with_image_size(image_size)
    model = randomize_(Sam3Model(cfg).eval(), seed=seed)
    trk = model.tracker_model
    randomize_(trk, seed + 1, std=0.1)
    with torch.no_grad():
        pe = trk.prompt_encoder.shared_embedding.positional_embedding
        pe.normal_(generator=torch.Generator().manual_seed(seed))
        trk.shared_image_embedding.positional_embedding.copy_(pe)
        trk.mask_decoder.pred_obj_score_head.proj_out.bias.add_(obj_score_bias)
    return model


def moving_disc_clip(num_frames: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Frames (H, W, 3) uint8: a red disc moving right over a smooth noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 7.0)[..., None] * 40 + np.cos(yy / 5.0)[..., None] * 40 + 120).repeat(3, axis=2)
    frames = []
    for t in range(num_frames):
        img = base + rng.normal(0, 6, (h, w, 3))
        cx, cy = 12 + (w - 24) * t / max(num_frames - 1, 1), h / 2
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= (min(h, w) / 5) ** 2
        img[disc] = (220, 40, 40)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def disc_centre(t: int, num_frames: int, h: int = 48, w: int = 64) -> list[float]:
    return [12 + (w - 24) * t / max(num_frames - 1, 1), h / 2]
