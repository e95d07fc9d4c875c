"""SimpleFPN neck: parity with transformers ``Sam3VisionNeck`` (all four levels), level selection, key names."""

from __future__ import annotations

import pytest
import torch

from fixtures.weights import randomize_
from fixtures.hf_keys import collapsed_patterns, released_patterns
from sam3kit.config import NeckConfig, Sam3Config
from sam3kit.model.neck import FPNNeck

transformers = pytest.importorskip("transformers")

TOL = 1e-4


def _hf_neck(in_dim: int, cfg: NeckConfig):
    from transformers.models.sam3.modeling_sam3 import Sam3VisionNeck

    vision = transformers.Sam3VisionConfig(backbone_config={"model_type": "sam3_vit_model", "hidden_size": in_dim},
                                           fpn_hidden_size=cfg.hidden_size, scale_factors=list(cfg.scale_factors))
    return Sam3VisionNeck(vision).eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_neck_matches_transformers_all_levels(seed):
    in_dim, cfg = 64, Sam3Config.tiny().detector.neck
    ours = randomize_(FPNNeck(in_dim, cfg), seed).eval()
    ref = _hf_neck(in_dim, cfg)
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, in_dim, 8, 8, generator=torch.Generator().manual_seed(seed)) * 3
    with torch.no_grad():
        out = ours(x, levels=(0, 1, 2, 3))
        expected, _ = ref(x)
    assert [o.shape[-1] for o in out] == [32, 16, 8, 4]
    for level, (a, b) in enumerate(zip(out, expected)):
        diff = (a - b).abs().max().item()
        print(f"neck seed {seed} level {level}: max abs diff {diff:.3e} (max |out| {a.abs().max():.2f})")
        assert diff <= TOL, f"level {level}: max abs diff {diff:.3e}"


def test_neck_computes_only_requested_levels():
    neck = randomize_(FPNNeck(64, Sam3Config.tiny().detector.neck), 0).eval()
    calls = []
    for k, layer in enumerate(neck.fpn_layers):
        layer.register_forward_hook(lambda *_, k=k: calls.append(k))
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():
        full = neck(x)
        assert calls == [0, 1, 2]
        calls.clear()
        picked = neck(x, levels=(2, 0))
    assert calls == [2, 0]
    assert torch.equal(picked[0], full[2]) and torch.equal(picked[1], full[0])
    with pytest.raises(ValueError, match="level 4"):
        neck(x, levels=(4,))


def test_released_tracker_neck_keys_and_shapes():
    cfg = Sam3Config.released()
    with torch.device("meta"):
        neck = FPNNeck(cfg.detector.vit.hidden_size, cfg.detector.neck)
    assert collapsed_patterns(neck.state_dict()) == released_patterns("tracker_neck.")
    shapes = {k: tuple(v.shape) for k, v in neck.state_dict().items()}
    assert shapes["fpn_layers.0.scale_layers.2.weight"] == (512, 256, 2, 2)
    assert shapes["fpn_layers.1.proj1.weight"] == (256, 512, 1, 1)
    assert shapes["fpn_layers.2.proj1.weight"] == (256, 1024, 1, 1)
    assert shapes["fpn_layers.3.proj1.weight"] == (256, 1024, 1, 1)
