"""Attention's two execution paths (torch's fused kernel, and two matrix products when one side is short) agree."""

import pytest
import torch
import torch.nn.functional as F

from sam3kit.model import layers
from sam3kit.model.layers import MLP, Attention

TOL = 1e-5


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
    got = layers._attention_by_products(q, k, v, m)
    assert (got - ref).abs().max().item() <= TOL


def test_attention_module_gives_the_same_answer_on_both_paths(monkeypatch):
    torch.manual_seed(1)
    attn = Attention(16, 2).eval()
    q, kv = torch.randn(1, 30, 16), torch.randn(1, 6, 16)
    pad = torch.tensor([[False, False, True, False, False, True]])
    with torch.no_grad():
        small = attn(q, kv, kv, key_padding_mask=pad)
        monkeypatch.setattr(layers, "_SMALL_SIDE", 0)  # force the fused kernel
        fused = attn(q, kv, kv, key_padding_mask=pad)
    assert (small - fused).abs().max().item() <= TOL


@pytest.mark.parametrize("act", ["gelu", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_mlp_add_into_is_the_residual_sum(act, bias):
    """``add_into`` (row blocks through one hidden buffer, accumulated into x) equals ``x + mlp(inp)``."""
    torch.manual_seed(4)
    mlp = MLP(8, 32, 8, 2, act=act, names="fc").eval()
    if not bias:
        mlp.fc1.bias, mlp.fc2.bias = None, None
    x, inp = torch.randn(3, 10, 8), torch.randn(3, 10, 8)
    with torch.no_grad():
        expected = x + mlp(inp)
        out = x.clone()
        got = mlp.add_into(out, inp, rows=7)  # 30 rows: blocks of 7, the last one short
    assert got is out  # written in place
    assert (got - expected).abs().max().item() <= TOL


def test_mlp_add_into_leaves_autograd_inputs_alone():
    torch.manual_seed(5)
    mlp = MLP(8, 32, 8, 2, names="fc")
    x, inp = torch.randn(4, 8), torch.randn(4, 8, requires_grad=True)
    before = x.clone()
    got = mlp.add_into(x, inp)
    assert got is not x and torch.equal(x, before) and got.requires_grad
    got.sum().backward()
    assert inp.grad is not None


@pytest.mark.parametrize("mask", ["none", "padding", "float", "bool"])
@pytest.mark.parametrize("internal", [None, 8])
def test_few_keys_folding_matches_the_plain_path(monkeypatch, mask, internal):
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
        folded = attn(q, kv, kv, **kw)
        monkeypatch.setattr(layers, "_MANY_QUERIES", 10**9)  # the plain path
        plain = attn(q, kv, kv, **kw)
    assert (folded - plain).abs().max().item() <= TOL
