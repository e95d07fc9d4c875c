"""Helpers for the tracker tests: our tiny Tracker with random weights and the transformers references."""

from __future__ import annotations

import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.model.tracker.tracker import Tracker

from fixtures.weights import randomize_


def build_tracker(seed: int) -> Tracker:
    """Our tiny tracker (d = 64, g = 8, S = 112) with deterministic random weights.

    Weights use std 0.1 (about 1/sqrt(fan-in)) and the Fourier matrix N(0, 1) as in the real model, so that
    prompts visibly change the masks (with std 0.02 every output is nearly prompt-independent).
    """
    t = randomize_(Tracker(Sam3Config.tiny().tracker), seed, std=0.1).eval()
    with torch.no_grad():
        t.prompt_encoder.shared_embedding.positional_embedding.normal_(generator=torch.Generator().manual_seed(seed))
    return t


def hf_tracker_state(ours: Tracker) -> dict[str, torch.Tensor]:
    """Our tracker's weights under transformers' names (identical by construction, both Gaussian matrices included)."""
    return dict(ours.state_dict())


def hf_tracker_config():
    """transformers ``Sam3TrackerConfig`` of ``Sam3Config.tiny()`` (our ``to_hf_dict``)."""
    transformers = pytest.importorskip("transformers")
    full = Sam3Config.tiny().to_hf_dict()["tracker_config"]
    # Sam3TrackerModel takes only the image-path sub-configs (the rest is video-only).
    keep = ("vision_config", "prompt_encoder_config", "mask_decoder_config")
    return transformers.Sam3TrackerConfig(**{k: full[k] for k in keep})


def hf_video_tracker_config():
    """transformers ``Sam3TrackerVideoConfig`` of ``Sam3Config.tiny()`` (memory modules; memory_dim must be 64)."""
    transformers = pytest.importorskip("transformers")
    full = dict(Sam3Config.tiny().to_hf_dict()["tracker_config"])
    full.pop("model_type")
    return transformers.Sam3TrackerVideoConfig(**full)


def random_features(seed: int, batch: int = 1, d: int = 64, g: int = 8):
    """Tracker-neck-like features: (embed (B, d, g, g), [s0 (B, d/8, 4g, 4g), s1 (B, d/4, 2g, 2g)])."""
    gen = torch.Generator().manual_seed(1000 + seed)
    embed = torch.randn(batch, d, g, g, generator=gen)
    s0 = torch.randn(batch, d // 8, 4 * g, 4 * g, generator=gen)
    s1 = torch.randn(batch, d // 4, 2 * g, 2 * g, generator=gen)
    return embed, [s0, s1]


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float() - b.detach().float()).abs().max().item()

