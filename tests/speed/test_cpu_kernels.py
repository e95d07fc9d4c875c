"""The CPU speed set (``sam3kit.speed.cpu``) against the plain model: every fast path with its plain twin.

Module level: ``CpuAttention`` (explicit products, few-keys folding, complex RoPE) against ``Attention`` with the
same parameters, the blocked residual MLP step against ``x + mlp(inp)``. Model level: the swap keeps the keys and
parameter objects and is undone by ``remove_cpu_kernels``; a tiny model with the set gives the plain model's
outputs.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fixtures.weights import randomize_
from sam3kit.config import Sam3Config
from sam3kit.model.detr_encoder import EncoderLayer
from sam3kit.model.layers import MLP, Attention
from sam3kit.model.rope import axial_rope
from sam3kit.model.sam3 import Sam3Model
from sam3kit.model.vit import ViTLayer
from sam3kit.speed import blocked_mlp
from sam3kit.speed.blocked_mlp import BlockedEncoderLayer, BlockedViTLayer, add_mlp_into
from sam3kit.speed.cpu import apply_cpu_kernels, has_cpu_kernels, remove_cpu_kernels
from sam3kit.speed.cpu_attention import CpuAttention, attention_by_products

TOL = 1e-5


def _cpu_twin(attn: Attention) -> CpuAttention:
    fast = apply_cpu_kernels(attn)
    assert type(fast) is CpuAttention and fast.q_proj is attn.q_proj
    return fast


@pytest.mark.parametrize("mask", ["none", "bool", "float"])
def test_attention_by_products_matches_fused_kernel(mask):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, n, 8, generator=g) for n in (70, 5, 5))
    m = None
    if mask == "bool":
        m = torch.tensor([[True, True, False, True, False], [True] * 5])[:, None, None, :]
    elif mask == "float":
        m = torch.randn(2, 4, 70, 5, generator=g)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    got = attention_by_products(q, k, v, m)
    assert (got - ref).abs().max().item() <= TOL


def test_short_side_attention_matches_the_plain_module():
    """30 queries over 6 keys: explicit products in the CPU variant, torch's fused kernel in the plain one."""
    torch.manual_seed(1)
    attn = Attention(16, 2).eval()
    q, kv = torch.randn(1, 30, 16), torch.randn(1, 6, 16)
    pad = torch.tensor([[False, False, True, False, False, True]])
    with torch.no_grad():
        plain = attn(q, kv, kv, key_padding_mask=pad)
        fast = _cpu_twin(attn)(q, kv, kv, key_padding_mask=pad)
    assert (fast - plain).abs().max().item() <= TOL


@pytest.mark.parametrize("mask", ["none", "padding", "float", "bool"])
@pytest.mark.parametrize("internal", [None, 8])
def test_few_keys_folding_matches_the_plain_module(mask, internal):
    """Many queries over few keys: projections folded into keys and values give the same attention."""
    torch.manual_seed(3)
    attn = Attention(16, 2, internal_dim=internal).eval()
    q, kv = torch.randn(2, 300, 16), torch.randn(2, 5, 16)
    kw = {}
    if mask == "padding":
        kw["key_padding_mask"] = torch.tensor([[False, True, False, False, True], [False] * 5])
    elif mask == "float":
        kw["attn_bias"] = torch.randn(2, 2, 300, 5)
    elif mask == "bool":
        kw["attn_bias"] = torch.rand(300, 5) > 0.3
        kw["attn_bias"][:, 0] = True
    with torch.no_grad():
        plain = attn(q, kv, kv, **kw)
        folded = _cpu_twin(attn)(q, kv, kv, **kw)
    assert (folded - plain).abs().max().item() <= TOL


def test_rope_attention_matches_the_plain_module():
    """RoPE on queries and keys (complex multiplication in the CPU variant), keys longer than the table."""
    torch.manual_seed(5)
    attn = Attention(32, 2).eval()
    q, kv = torch.randn(1, 16, 32), torch.randn(1, 16 * 2 + 3, 32)
    rope = axial_rope(16, 4, 4)
    k_rope = (rope[0].repeat(2, 1), rope[1].repeat(2, 1))  # two memory frames, 3 trailing tokens not rotated
    with torch.no_grad():
        plain = attn(q, kv, kv, q_rope=rope, k_rope=k_rope)
        fast = _cpu_twin(attn)(q, kv, kv, q_rope=rope, k_rope=k_rope)
    assert (fast - plain).abs().max().item() <= TOL


@pytest.mark.parametrize("act", ["gelu", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_blocked_mlp_step_is_the_residual_sum(act, bias):
    """Row blocks through one hidden buffer, accumulated into x: ``x + mlp(inp)``."""
    torch.manual_seed(4)
    mlp = MLP(8, 32, 8, 2, act=act, names="fc").eval()
    if not bias:
        mlp.fc1.bias, mlp.fc2.bias = None, None
    x, inp = torch.randn(3, 10, 8), torch.randn(3, 10, 8)
    with torch.no_grad():
        expected = x + mlp(inp)
        out = x.clone()
        got = add_mlp_into(mlp, out, inp, rows=7)  # 30 rows: blocks of 7, the last one short
    assert got is out  # written in place
    assert (got - expected).abs().max().item() <= TOL


def test_blocked_mlp_step_leaves_autograd_inputs_alone():
    torch.manual_seed(5)
    mlp = MLP(8, 32, 8, 2, names="fc")
    x, inp = torch.randn(4, 8), torch.randn(4, 8, requires_grad=True)
    before = x.clone()
    got = add_mlp_into(mlp, x, inp, rows=576)
    assert got is not x and torch.equal(x, before) and got.requires_grad
    got.sum().backward()
    assert inp.grad is not None


def _tiny(seed: int = 0) -> Sam3Model:
    return randomize_(Sam3Model(Sam3Config.tiny()), seed, std=0.05).eval()


def test_swap_keeps_keys_and_parameters_and_is_undone():
    model = _tiny()
    before = model.state_dict(keep_vars=True)
    kinds_before = {n: type(m) for n, m in model.named_modules()}
    assert apply_cpu_kernels(model) is model and has_cpu_kernels(model)
    after = model.state_dict(keep_vars=True)
    assert list(after) == list(before) and all(after[k] is before[k] for k in before)
    counts = {}
    for name, m in model.named_modules():
        if kinds_before[name] in (Attention, ViTLayer, EncoderLayer):
            counts[type(m)] = counts.get(type(m), 0) + 1
        else:
            assert type(m) is kinds_before[name], name
    cfg = model.config
    assert counts[BlockedViTLayer] == cfg.detector.vit.num_layers
    assert counts[BlockedEncoderLayer] == cfg.detector.encoder.num_layers + cfg.detector.geometry.num_layers
    assert set(counts) == {CpuAttention, BlockedViTLayer, BlockedEncoderLayer}
    assert apply_cpu_kernels(model) is model  # a second time changes nothing
    assert {n: type(m) for n, m in model.named_modules()}.keys() == kinds_before.keys()
    assert remove_cpu_kernels(model) is model and not has_cpu_kernels(model)
    assert {n: type(m) for n, m in model.named_modules()} == kinds_before
    restored = model.state_dict(keep_vars=True)
    assert all(restored[k] is before[k] for k in before)


def test_a_swapped_module_does_not_share_its_containers():
    attn = Attention(8, 2)
    fast = apply_cpu_kernels(attn)
    fast.q_proj = nn.Linear(8, 8)
    assert attn.q_proj is not fast.q_proj and attn.k_proj is fast.k_proj


def _outputs(model: Sam3Model) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    s = model.config.image_size
    pixels = torch.rand(2, 3, s, s, generator=g) * 2 - 1
    ids = torch.randint(1, 1000, (2, 8), generator=g)
    pad = torch.arange(8)[None] >= torch.tensor([[5], [8]])
    boxes = torch.tensor([[[0.5, 0.5, 0.3, 0.4]], [[0.3, 0.6, 0.2, 0.2]]])
    with torch.inference_mode():
        feats = model.encode_image(pixels, detector=True, tracker=True)
        text = model.detector_model.encode_text(ids, pad)
        prepared = model.detector_model.with_image_terms(feats.detector)
        det = model.detector_model.forward_prompts(prepared, text, boxes)
        pts, lab = torch.tensor([[[40.0, 60.0], [70.0, 20.0]]]).expand(2, -1, -1), torch.tensor([[1, 0], [1, -1]])
        trk = model.tracker_model.predict(feats.tracker, pts, lab)
    return {"trunk": feats.detector.fpn[-1], "text": text.features, "logits": det.logits, "boxes": det.boxes,
            "presence": det.presence_logit, "masks": det.mask_logits, "semantic": det.semantic_logits,
            "click_masks": trk.mask_logits, "click_iou": trk.iou_scores}


def test_model_with_the_cpu_set_gives_the_plain_outputs():
    plain = _tiny(3)
    fast = apply_cpu_kernels(copy.deepcopy(plain))
    a, b = _outputs(plain), _outputs(fast)
    for k in a:
        scale = max(a[k].abs().max().item(), 1.0)
        assert (a[k] - b[k]).abs().max().item() <= 1e-4 * scale, k


def test_vit_and_encoder_take_the_blocked_step(monkeypatch):
    """With the set applied, every ViT MLP and DETR-encoder FFN runs through ``add_mlp_into`` on a contiguous
    stream, and writes into it (the blocked form, not its fallback)."""
    model = apply_cpu_kernels(_tiny(1))
    seen = []
    real = blocked_mlp.add_mlp_into

    def spy(mlp, x, inp, *, rows):
        out = real(mlp, x, inp, rows=rows)
        seen.append((rows, out is x))
        return out

    monkeypatch.setattr(blocked_mlp, "add_mlp_into", spy)
    _outputs(model)
    vit = [r for r in seen if r[0] == blocked_mlp.VIT_ROWS]
    enc = [r for r in seen if r[0] == blocked_mlp.ENCODER_ROWS]
    assert len(vit) == model.config.detector.vit.num_layers and all(w for _, w in vit)
    assert len(enc) == model.config.detector.encoder.num_layers + model.config.detector.geometry.num_layers
    assert all(w for _, w in enc)
