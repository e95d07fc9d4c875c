"""The plain ``Attention`` against attention written out by hand (the CPU variant's parity is tests/speed)."""

import pytest
import torch

from sam3kit.errors import CheckpointError, InputError
from sam3kit.model.layers import MLP, Attention

TOL = 1e-5


def _explicit(attn: Attention, q, k, v, bias=None, pad=None):
    """softmax(q k^T / sqrt(dh) + bias, padding masked) v per head, through the module's own projections."""
    h = attn.num_heads
    qh, kh, vh = (t.view(t.shape[0], t.shape[1], h, -1).transpose(1, 2)
                  for t in (attn.q_proj(q), attn.k_proj(k), attn.v_proj(v)))
    scores = qh @ kh.transpose(-1, -2) / qh.shape[-1] ** 0.5
    if bias is not None:
        scores = scores.masked_fill(~bias, float("-inf")) if bias.dtype == torch.bool else scores + bias
    if pad is not None:
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ vh).transpose(1, 2).flatten(2)
    return attn.o_proj(out)


@pytest.mark.parametrize("mask", ["none", "padding", "float", "bool", "bool+padding", "float+padding"])
@pytest.mark.parametrize("shape", [dict(), dict(internal_dim=8), dict(kv_dim=12, out_dim=20)])
def test_attention_matches_the_explicit_form(mask, shape):
    torch.manual_seed(2)
    attn = Attention(16, 2, **shape).eval()
    q, kv = torch.randn(2, 30, 16), torch.randn(2, 6, shape.get("kv_dim", 16))
    bias = pad = None
    if "padding" in mask:
        pad = torch.tensor([[False, True, False, False, True, False], [False] * 6])
    if mask.startswith("float"):
        bias = torch.randn(2, 2, 30, 6)
    elif mask.startswith("bool"):
        bias = torch.rand(30, 6) > 0.3
        bias[:, 0] = True
    with torch.no_grad():
        got = attn(q, kv, kv, attn_bias=bias, key_padding_mask=pad)
        want = _explicit(attn, q, kv, kv, bias, pad)
    assert got.shape == (2, 30, shape.get("out_dim", 16))
    assert (got - want).abs().max().item() <= TOL


def test_mlp_forward_and_names():
    torch.manual_seed(4)
    mlp = MLP(8, 32, 4, 3, act="gelu", names="sam").eval()
    assert [n for n, _ in mlp.named_parameters()] == [
        "proj_in.weight", "proj_in.bias", "layers.0.weight", "layers.0.bias", "proj_out.weight", "proj_out.bias"]
    x = torch.randn(5, 8)
    with torch.no_grad():
        a, b, c = mlp.linears()
        want = c(torch.nn.functional.gelu(b(torch.nn.functional.gelu(a(x)))))
        assert torch.equal(mlp(x), want)


def test_bad_construction_arguments():
    with pytest.raises(CheckpointError, match="not divisible"):
        Attention(16, 3)
    with pytest.raises(InputError, match="naming"):
        MLP(4, 4, 4, 2, names="dense")
