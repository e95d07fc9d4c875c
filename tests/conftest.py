"""Shared fixtures: tiny configurations and deterministic random weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sam3kit.config import Sam3Config


def randomize_(module: nn.Module, seed: int = 0, std: float = 0.02) -> nn.Module:
    """Fill every parameter and floating buffer of ``module`` with N(0, std) noise (deterministic in ``seed``).

    Norm weights are centred on 1 so activations keep a sensible scale; every tensor gets noise so that
    zero-initialised layers (last box-head layer, layer scales) are exercised.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(module.named_parameters()) + list(module.named_buffers()):
            if not p.is_floating_point():
                continue
            noise = torch.randn(p.shape, generator=g) * std
            leaf = name.rsplit(".", 1)[-1]
            parent = name.rsplit(".", 2)[-2] if name.count(".") else ""
            if leaf == "weight" and ("norm" in parent or "layer_norm" in parent) and p.dim() == 1:
                p.copy_(1.0 + noise)
            elif p.dim() <= 1 and leaf not in ("weight",):
                p.copy_(noise * 2.5)
            else:
                p.copy_(noise if p.numel() > 256 else noise * 20)
    return module


@pytest.fixture
def tiny_config() -> Sam3Config:
    return Sam3Config.tiny()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
