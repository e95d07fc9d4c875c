"""ViT trunk and detector vision encoder: parity with transformers ``Sam3ViTModel`` / ``Sam3VisionModel``.

The HF ViT is configured with ``layer_norm_eps=1e-5`` (the official value; HF's default is 1e-6) through
``Sam3Config.to_hf_dict``. Random weights come from ``randomize_``; q/k projections are then scaled up so that
attention is peaked and RoPE / windowing errors show (with the plain N(0, 0.02) weights attention is nearly
uniform and a wrong global RoPE scale moves the output by only ~2e-4).

Device-parametrised (``tests/fixtures/devices.py``): both sides run on the CPU, and again on the device under test
(CUDA when there is one, TF32 off; the plain ViT only, the CPU speed set being for the CPU) at the same tolerance.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fixtures.weights import randomize_
from fixtures.hf_keys import collapsed_patterns, released_patterns
from sam3kit.config import Sam3Config, ViTConfig
from sam3kit.errors import InputError
from sam3kit.model.vision import VisionEncoder
from sam3kit.model.vit import ViT
from sam3kit.speed.cpu import apply_cpu_kernels

transformers = pytest.importorskip("transformers")

TOL = 1e-4


def _random_weights(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    randomize_(module, seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(8.0)
    return module.eval()


def _hf_dict(vit: ViTConfig) -> dict:
    tiny = Sam3Config.tiny(with_tracker=False)
    cfg = tiny.replace(detector=dataclasses.replace(tiny.detector, vit=vit))
    return cfg.to_hf_dict()["vision_config"]


def _pixels(batch: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(100 + seed)) * 2 - 1


# tiny (g=8, window 4, pretrain grid 4) and a padded variant (g=9: windows padded to 12, pos-emb tiled then cut)
VIT_CONFIGS = {
    "tiny": Sam3Config.tiny().detector.vit,
    "padded": dataclasses.replace(Sam3Config.tiny().detector.vit, image_size=126, num_layers=3,
                                  global_attn_indexes=(1,)),
}


@pytest.mark.parametrize("kernels", ["plain", "cpu"])
@pytest.mark.parametrize("name", list(VIT_CONFIGS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vit_matches_transformers(name, seed, kernels, test_device):
    """The plain ViT, and the ViT with the CPU speed set (complex RoPE, blocked MLP step) applied."""
    if kernels == "cpu" and test_device.plain:
        pytest.skip("the CPU speed set is for the CPU; the device under test runs the plain model")
    dev = test_device.torch_device
    cfg = VIT_CONFIGS[name]
    ours = _random_weights(ViT(cfg), seed)
    if kernels == "cpu":
        ours = apply_cpu_kernels(ours)
    hf_cfg = transformers.Sam3ViTConfig(**_hf_dict(cfg)["backbone_config"])
    assert hf_cfg.layer_norm_eps == 1e-5
    ref = transformers.Sam3ViTModel(hf_cfg).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    ours, ref = ours.to(dev), ref.to(dev)
    x = _pixels(2, cfg.image_size, seed).to(dev)
    g = cfg.grid_size
    with torch.no_grad():
        out = ours(x)
        expected = ref(x).last_hidden_state.view(2, g, g, -1).permute(0, 3, 1, 2)
    assert out.shape == (2, cfg.hidden_size, g, g)
    diff = (out - expected).abs().max().item()
    print(f"ViT[{name}] on {dev} seed {seed}: max abs diff {diff:.3e} (max |out| {out.abs().max():.2f})")
    assert diff <= TOL, f"ViT[{name}] seed {seed}: max abs diff {diff:.3e}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vision_encoder_matches_transformers(seed, test_device):
    dev = test_device.torch_device
    det = Sam3Config.tiny().detector
    ours = _random_weights(VisionEncoder(det.vit, det.neck), seed)
    ref = transformers.Sam3VisionModel(transformers.Sam3VisionConfig(**_hf_dict(det.vit))).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    ours, ref = ours.to(dev), ref.to(dev)
    x = _pixels(2, det.vit.image_size, seed).to(dev)
    with torch.no_grad():
        feats = ours.features_from_trunk(ours.backbone(x))
        r = ref(x)
    g, d = det.vit.grid_size, det.neck.hidden_size
    assert [tuple(f.shape) for f in feats.fpn] == [(2, d, 4 * g, 4 * g), (2, d, 2 * g, 2 * g), (2, d, g, g)]
    for level in range(3):
        diff = (feats.fpn[level] - r.fpn_hidden_states[level]).abs().max().item()
        print(f"vision encoder seed {seed} level {level}: max abs diff {diff:.3e}")
        assert diff <= TOL, f"level {level}: max abs diff {diff:.3e}"
    assert feats.pos.shape == (d, g, g)
    diff = (feats.pos - r.fpn_position_encoding[2][0]).abs().max().item()
    print(f"vision encoder seed {seed} pos: max abs diff {diff:.3e}")
    assert diff <= TOL


def test_vit_rejects_other_input_sizes():
    vit = ViT(Sam3Config.tiny().detector.vit)
    with pytest.raises(InputError, match=r"\(B, 3, 112, 112\)"):
        vit(torch.zeros(1, 3, 98, 98))


def test_released_vision_encoder_keys_and_shapes():
    det = Sam3Config.released().detector
    with torch.device("meta"):
        enc = VisionEncoder(det.vit, det.neck)
    ours = collapsed_patterns(enc.state_dict())
    assert ours == released_patterns("detector_model.vision_encoder.")
    assert ours["backbone.embeddings.position_embeddings"] == ((1, 576, 1024), 1)


def test_plain_vit_exports_in_real_arithmetic():
    """The plain trunk goes through ``torch.export`` (no host synchronisation, no complex tensors: RoPE in real
    arithmetic, torch's fused attention) and the exported program gives the eager output."""
    vit = _random_weights(ViT(Sam3Config.tiny().detector.vit), 0)
    x = _pixels(1, vit.config.image_size, 0)
    program = torch.export.export(vit, (x,))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert not [t for t in targets if "complex" in t or "view_as_real" in t], targets
    assert any("scaled_dot_product_attention" in t for t in targets)
    with torch.no_grad():
        assert torch.equal(program.module()(x), vit(x))
