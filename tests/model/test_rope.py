"""``apply_rope`` (real arithmetic) and its complex-multiplication twin of ``sam3kit.speed`` against a pair-by-pair
rotation written out here, on the layouts attention hands them."""

import pytest
import torch

from sam3kit.model.rope import apply_rope, axial_rope
from sam3kit.speed.complex_rope import apply_rope_complex


def _rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (x_2k, x_2k+1) by the angle whose cosine and sine are cos[t, k], sin[t, k] (fp32, 2x2 matrices)."""
    xf = x.float()
    out = xf.clone()
    n = cos.shape[0]
    for k in range(cos.shape[1]):
        a, b = xf[..., :n, 2 * k], xf[..., :n, 2 * k + 1]
        out[..., :n, 2 * k] = a * cos[:, k] - b * sin[:, k]
        out[..., :n, 2 * k + 1] = a * sin[:, k] + b * cos[:, k]
    return out.to(x.dtype)


def _layouts(g: torch.Generator):
    dense = torch.randn(2, 3, 16, 8, generator=g)
    heads = torch.randn(2, 16, 3 * 8, generator=g).view(2, 16, 3, 8).transpose(1, 2)  # per-head view of a projection
    odd = torch.randn(2 * 3 * 16 * 8 + 1, generator=g)[1:].view(2, 3, 16, 8)  # odd storage offset
    strided = torch.randn(2, 3, 16, 16, generator=g)[..., ::2]  # last dim not contiguous
    return {"dense": dense, "heads": heads, "odd_offset": odd, "strided": strided, "half": dense.half()}


@pytest.mark.parametrize("layout", ["dense", "heads", "odd_offset", "strided", "half"])
@pytest.mark.parametrize("tokens", [16, 9])
@pytest.mark.parametrize("rotate", [apply_rope, apply_rope_complex], ids=["real", "complex"])
def test_apply_rope_rotates_each_pair(layout, tokens, rotate):
    g = torch.Generator().manual_seed(0)
    x = _layouts(g)[layout]
    cos, sin = axial_rope(8, 4, 4, scale=0.5)
    cos, sin = cos[:tokens], sin[:tokens]
    got = rotate(x, (cos, sin))
    ref = _rotate_pairs(x, cos, sin)
    assert got.shape == x.shape and got.dtype == x.dtype
    tol = 1e-3 if x.dtype == torch.half else 1e-6
    assert (got.float() - ref.float()).abs().max().item() <= tol
    assert torch.equal(got[..., tokens:, :], x[..., tokens:, :])  # tokens after the table pass unchanged
