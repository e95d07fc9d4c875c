"""The matrix-product forms of SAM's 2x2 transposed convolutions and of a 3x3 convolution after nearest 2x
upsampling, against the torch modules they replace (fp32 rounding only)."""

import pytest
import torch
import torch.nn.functional as F

from sam3kit.ops.conv import conv3x3_after_upsample2x, conv_transpose2x2

TOL = 1e-5


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_add", [1, 2])
def test_conv_transpose2x2_matches_torch(bias, batch_add):
    g = _gen(0)
    ct = torch.nn.ConvTranspose2d(12, 5, kernel_size=2, stride=2, bias=bias)
    x = torch.randn(2, 12, 6, 9, generator=g)
    add = torch.randn(batch_add, 5, 12, 18, generator=g)
    with torch.no_grad():
        ref = ct(x)
        got = conv_transpose2x2(x.permute(0, 2, 3, 1), ct.weight, ct.bias)
        got_add = conv_transpose2x2(x.permute(0, 2, 3, 1), ct.weight, ct.bias, add=add.permute(0, 2, 3, 1))
    assert got.shape == (2, 12, 18, 5) and got.is_contiguous()
    assert (got.permute(0, 3, 1, 2) - ref).abs().max().item() <= TOL
    assert (got_add.permute(0, 3, 1, 2) - (ref + add)).abs().max().item() <= TOL


def test_conv_transpose2x2_keeps_gradients():
    ct = torch.nn.ConvTranspose2d(4, 3, kernel_size=2, stride=2)
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    add = torch.randn(1, 6, 6, 3)
    conv_transpose2x2(x.permute(0, 2, 3, 1), ct.weight, ct.bias, add=add).sum().backward()
    ref = torch.autograd.grad(ct(x).sum(), x)[0]
    assert torch.allclose(x.grad, ref, atol=TOL)


def test_conv_transpose2x2_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"weight must be \(Cin=4"):
        conv_transpose2x2(torch.zeros(1, 2, 2, 4), torch.zeros(3, 2, 2, 2))
    with pytest.raises(ValueError, match="add must be"):
        conv_transpose2x2(torch.zeros(1, 2, 2, 4), torch.zeros(4, 2, 2, 2), add=torch.zeros(1, 4, 4, 3))


@pytest.mark.parametrize("size", [(5, 7), (1, 1), (8, 8)])
def test_conv3x3_after_upsample2x_matches_upsample_then_conv(size):
    g = _gen(1)
    y = torch.randn(2, 6, *size, generator=g)
    w = torch.randn(4, 6, 3, 3, generator=g)
    add = torch.randn(1, 4, 2 * size[0], 2 * size[1], generator=g)
    with torch.no_grad():
        ref = F.conv2d(F.interpolate(y, scale_factor=2, mode="nearest"), w, padding=1)
        got = conv3x3_after_upsample2x(y, w)
        got_add = conv3x3_after_upsample2x(y, w, add=add)
    assert got.shape == ref.shape and got.is_contiguous()
    scale = ref.abs().max().item()
    assert (got - ref).abs().max().item() <= TOL * scale
    assert (got_add - (ref + add)).abs().max().item() <= TOL * scale


def test_conv3x3_after_upsample2x_keeps_gradients():
    y = torch.randn(1, 3, 4, 4, requires_grad=True)
    w = torch.randn(2, 3, 3, 3)
    out = conv3x3_after_upsample2x(y, w, add=torch.ones(1, 2, 8, 8))
    ref = F.conv2d(F.interpolate(y, scale_factor=2, mode="nearest"), w, padding=1) + 1
    assert torch.allclose(out, ref, atol=1e-4)
    out.square().sum().backward()
    expected = torch.autograd.grad(ref.square().sum(), y)[0]
    assert torch.allclose(y.grad, expected, atol=1e-3)


def test_conv3x3_after_upsample2x_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"weight must be \(Cout, Cin=3, 3, 3\)"):
        conv3x3_after_upsample2x(torch.zeros(1, 3, 2, 2), torch.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match="add must be"):
        conv3x3_after_upsample2x(torch.zeros(1, 3, 2, 2), torch.zeros(2, 3, 3, 3), add=torch.zeros(1, 2, 5, 4))
