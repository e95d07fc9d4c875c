"""The int8 CPU path (``sam3kit.speed.quantize_int8``) against eager fp32 on the same random weights.

int8 is not exact: the checks bound the error (weight quantization error is at most half a step per weight;
activations are quantized per call) and check that the swapped model stays a drop-in replacement.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fixtures.weights import randomize_
from sam3kit.config import Sam3Config
from sam3kit.errors import InputError
from sam3kit.model.sam3 import Sam3Model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from sam3kit.speed.int8 import Int8Linear, Int8Options, quantize_int8, quantize_weight  # noqa: E402


def _cos(a, b) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("reduce_range", [True, False])
def test_weight_quantization_error_is_half_a_step(reduce_range):
    w = torch.randn(48, 40, generator=torch.Generator().manual_seed(3))
    q, scale = quantize_weight(w, reduce_range)
    assert q.dtype == torch.int8 and q.shape == (40, 48) and scale.shape == (48,)
    qmax = 63 if reduce_range else 127
    assert q.abs().max().item() == qmax
    err = (q.float() * scale).t() - w
    assert (err.abs() <= scale[:, None] / 2 + 1e-7).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_linear_matches_fp32_linear(seed):
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(64, 96)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(96, 64, generator=g) * 0.1)
        lin.bias.copy_(torch.randn(96, generator=g))
    x = torch.randn(2, 7, 64, generator=g)
    q = Int8Linear(lin, reduce_range=True, threads=1)
    with torch.inference_mode():
        ref, out = lin(x), q(x)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    rel = ((out - ref).norm() / ref.norm()).item()
    print(f"\nInt8Linear seed={seed}: relative error {rel:.2e}, cosine {_cos(out, ref):.6f}")
    assert rel < 2e-2
    assert _cos(out, ref) > 0.999


def test_int8_linear_without_bias():
    lin = nn.Linear(32, 16, bias=False)
    q = Int8Linear(lin, threads=1)
    x = torch.randn(5, 32)
    with torch.inference_mode():
        assert _cos(q(x), lin(x)) > 0.999


def test_int8_linear_writes_into_out():
    lin = nn.Linear(24, 40)
    q = Int8Linear(lin, threads=1)
    x = torch.randn(9, 24, generator=torch.Generator().manual_seed(0))
    out = torch.full((9, 40), float("nan"))
    with torch.inference_mode():
        assert q(x, out=out) is out
        assert torch.equal(out, q(x))  # the same call, the same quantization, the same bits
        for bad in (torch.empty(9, 41), torch.empty(40, 9).t(), torch.empty(9, 40, dtype=torch.float64)):
            with pytest.raises(InputError, match="out must be a contiguous float32"):
                q(x, out=bad)


@pytest.mark.parametrize("rows", [64, 7])
def test_int8_blocked_mlp_step_is_the_blockwise_residual_sum(rows):
    """The blocked MLP step (``sam3kit.speed.blocked_mlp``) with int8 layers: ``x + mlp(inp)`` over blocks of
    ``block_rows`` rows (activations are quantized per call, so each block is compared with the plain MLP applied
    to that block alone)."""
    from sam3kit.model.layers import MLP
    from sam3kit.speed.blocked_mlp import add_mlp_into
    from sam3kit.speed.int8 import swap_linears

    g = torch.Generator().manual_seed(1)
    mlp = MLP(16, 48, 16, 2, act="gelu", names="fc").eval()
    with torch.no_grad():
        for p in mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    assert swap_linears(mlp, threads=1) == 2
    for lin in mlp.linears():
        lin.block_rows = rows  # 30 rows: one block (64), or blocks of 7 with a short last one
    x, inp = torch.randn(2, 15, 16, generator=g), torch.randn(2, 15, 16, generator=g)
    with torch.inference_mode():
        flat_x, flat_in = x.view(30, 16), inp.view(30, 16)
        want = torch.cat([flat_x[i:i + rows] + mlp(flat_in[i:i + rows]) for i in range(0, 30, rows)]).view_as(x)
        got = add_mlp_into(mlp, x.clone(), inp, rows=1)  # block_rows raises the caller's rows
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_int8_and_the_cpu_set_in_either_order(monkeypatch):
    """int8 then the CPU set (as ``load`` does) or the other way round: the same modules, the ViT MLP steps in
    blocks through the int8 layers, the same outputs."""
    from sam3kit.speed import blocked_mlp
    from sam3kit.speed.blocked_mlp import BlockedViTLayer
    from sam3kit.speed.cpu import apply_cpu_kernels
    from sam3kit.speed.cpu_attention import CpuAttention

    cfg = Sam3Config.tiny()
    models = []
    for order in ("int8 first", "cpu first"):
        m = randomize_(Sam3Model(cfg), 2, std=0.05).eval()
        if order == "int8 first":
            apply_cpu_kernels(quantize_int8(m, Int8Options(threads=1)))
        else:
            quantize_int8(apply_cpu_kernels(m), Int8Options(threads=1))
        vit = m.detector_model.vision_encoder.backbone
        assert all(type(layer) is BlockedViTLayer and type(layer.attention) is CpuAttention for layer in vit.layers)
        assert all(isinstance(layer.mlp.fc1, Int8Linear) and isinstance(layer.attention.q_proj, Int8Linear)
                   for layer in vit.layers)
        models.append(m)
    written = []
    real = blocked_mlp.add_mlp_into

    def spy(mlp, x, inp, *, rows):
        out = real(mlp, x, inp, rows=rows)
        written.append(out is x)
        return out

    monkeypatch.setattr(blocked_mlp, "add_mlp_into", spy)
    pixels = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        a, b = (m.detector_model.vision_encoder.backbone(pixels) for m in models)
    assert len(written) == 2 * cfg.detector.vit.num_layers and all(written)
    assert torch.equal(a, b)


@pytest.mark.parametrize("seed", [0, 1])
def test_quantized_model_stays_close_to_fp32(seed):
    cfg = Sam3Config.tiny()
    fp32 = randomize_(Sam3Model(cfg), seed, std=0.05).eval()
    fast = randomize_(Sam3Model(cfg), seed, std=0.05).eval()
    quantize_int8(fast, Int8Options(parts=("vit", "text"), threads=1))
    vit = fast.detector_model.vision_encoder.backbone
    n_int8 = sum(isinstance(m, Int8Linear) for m in vit.modules())
    assert n_int8 == 6 * cfg.detector.vit.num_layers  # q, k, v, o, fc1, fc2 per block
    assert not any(type(m) is nn.Linear for m in vit.modules())
    assert any(type(m) is nn.Linear for m in fast.detector_model.detr_decoder.modules())  # heads stay fp32
    pixels = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    ids = torch.randint(1, 1000, (1, 32), generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        a = fp32.detector_model.vision_encoder.backbone(pixels)
        b = vit(pixels)
        ta = fp32.detector_model.text_encoder(ids)
        tb = fast.detector_model.text_encoder(ids)
    print(f"\nint8 ViT seed={seed}: cosine {_cos(a, b):.6f}, max abs diff {(a - b).abs().max():.2e} "
          f"(|ref| {a.abs().max():.2f}); text cosine {_cos(ta, tb):.6f}")
    assert b.shape == a.shape and b.dtype == torch.float32
    assert _cos(a, b) > 0.999 and _cos(ta, tb) > 0.999


def test_fingerprint_changes_and_options_are_checked():
    model = Sam3Model(Sam3Config.tiny()).eval()
    model.fingerprint = "abc"
    quantize_int8(model, Int8Options(threads=1))
    assert model.fingerprint.startswith("abc|int8")
    with pytest.raises(InputError, match="unknown int8 parts"):
        quantize_int8(Sam3Model(Sam3Config.tiny()), Int8Options(parts=("neck",)))
    with pytest.raises(InputError, match="fp32 model on the CPU"):
        quantize_int8(Sam3Model(Sam3Config.tiny()).to(torch.bfloat16))


def test_load_fast_int8(tiny_checkpoint):
    import numpy as np

    import sam3kit

    model = sam3kit.load(tiny_checkpoint, fast="int8")
    assert isinstance(model.detector_model.vision_encoder.backbone.layers[0].mlp.fc1, Int8Linear)
    pred = sam3kit.ImagePredictor(model)
    pred.set_image(np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8))
    found = pred.segment(text="a cat", threshold=0.0)
    obj = pred.predict(points=[[30, 40]])
    assert found.masks.shape[1:] == (90, 120) and obj.masks.shape == (3, 90, 120)
    with pytest.raises(InputError, match="unknown fast mode"):
        sam3kit.load(tiny_checkpoint, fast="int4")
