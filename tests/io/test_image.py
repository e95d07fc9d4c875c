"""Image decoding: formats, EXIF orientation, conversions and every refusal path."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sam3kit.errors import ImageError, InputError
from sam3kit.io import image as image_mod
from sam3kit.io.image import load_image


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_png_roundtrip_is_exact(tmp_path):
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "x.png")
    assert np.array_equal(load_image(tmp_path / "x.png"), a)
    assert np.array_equal(load_image(str(tmp_path / "x.png")), a)


def test_pil_and_array_inputs():
    a = _rgb()
    assert np.array_equal(load_image(Image.fromarray(a)), a)
    assert np.array_equal(load_image(a), a)


def test_exif_orientation_is_applied(tmp_path):
    a = _rgb(10, 40)
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (40, 10, 3)


def test_conversions():
    gray = np.arange(200, dtype=np.uint8).reshape(10, 20)
    out = load_image(Image.fromarray(gray))
    assert out.shape == (10, 20, 3) and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)
    rgba = np.dstack([_rgb(), np.full((20, 30), 7, np.uint8)])
    assert np.array_equal(load_image(Image.fromarray(rgba)), rgba[..., :3])
    assert np.array_equal(load_image(rgba), rgba[..., :3])
    g16 = (np.arange(200, dtype=np.uint16).reshape(10, 20) * 300).astype(np.uint16)
    out16 = load_image(Image.fromarray(g16))
    assert out16.dtype == np.uint8 and out16.shape == (10, 20, 3)
    assert np.array_equal(out16[..., 0], np.round(g16 / 65535.0 * 255).astype(np.uint8))
    assert np.array_equal(load_image(g16[..., None].repeat(3, 2))[..., 0], out16[..., 0])


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_directory(tmp_path):
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_not_an_image(tmp_path):
    (tmp_path / "t.png").write_text("hello, not an image")
    with pytest.raises(ImageError, match="not an image format"):
        load_image(tmp_path / "t.png")


def test_truncated_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(tmp_path / "cut.png")


def test_decompression_bomb(tmp_path, monkeypatch):
    Image.fromarray(_rgb(50, 50)).save(tmp_path / "big.png")
    monkeypatch.setattr(image_mod, "MAX_PIXELS", 100)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(tmp_path / "big.png")
    with pytest.raises(ImageError, match="over the limit of 100"):
        load_image(_rgb(50, 50))


def test_pixel_limit_can_be_raised(tmp_path, monkeypatch):
    Image.fromarray(_rgb(50, 50)).save(tmp_path / "big.png")
    monkeypatch.setattr(image_mod, "MAX_PIXELS", 100)
    assert load_image(tmp_path / "big.png", max_pixels=2500).shape == (50, 50, 3)  # one call
    assert load_image(tmp_path / "big.png", max_pixels=None).shape == (50, 50, 3)  # no limit
    with pytest.raises(ImageError, match="over the limit of 2499"):
        load_image(tmp_path / "big.png", max_pixels=2499)
    monkeypatch.setattr(image_mod, "MAX_PIXELS", None)  # the process default
    assert load_image(tmp_path / "big.png").shape == (50, 50, 3)
    # the one limit governs: Pillow's own guard is off while the header is read, then restored
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    assert load_image(tmp_path / "big.png", max_pixels=10**6).shape == (50, 50, 3)
    assert Image.MAX_IMAGE_PIXELS == 10
    with pytest.raises(ImageError, match="over the limit of 100"):
        load_image(tmp_path / "big.png", max_pixels=100)
    for bad in (0, -5, 2.5, "10", True):
        with pytest.raises(InputError, match="max_pixels must be a positive integer or None"):
            load_image(tmp_path / "big.png", max_pixels=bad)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.int32), np.zeros((0, 4, 3), np.uint8), "x" * 0])
def test_bad_arrays(bad):
    with pytest.raises(ImageError):
        load_image(bad)


def test_wrong_type():
    with pytest.raises(ImageError, match="expected an image path"):
        load_image(12)


# ---------------------------------------------------------------- floats and torch tensors
def test_float_arrays_in_0_1():
    a = _rgb()
    f = a.astype(np.float64) / 255.0
    assert np.array_equal(load_image(f), a) and np.array_equal(load_image(f.astype(np.float32)), a)
    assert np.array_equal(load_image(f.astype(np.float16)), a)
    assert np.array_equal(load_image(np.array([[[0.5, 0.0, 1.0]]])), np.array([[[128, 0, 255]]], np.uint8))
    for bad, hint in ((f * 255.0, "divide by 255"), (f - 0.1, "from -0.1"), (np.full((2, 2, 3), np.nan), "nan")):
        with pytest.raises(InputError, match=f"must hold values in \\[0, 1\\].*{hint}"):
            load_image(bad)


def test_numpy_channels_first_is_refused_with_the_fix():
    with pytest.raises(ImageError, match=r"channels first: pass np\.ascontiguousarray\(a\.transpose\(1, 2, 0\)\)"):
        load_image(np.zeros((3, 20, 30), np.uint8))


def test_torch_tensors_chw_and_hwc():
    import torch

    a = _rgb()
    hwc = torch.from_numpy(a)
    assert np.array_equal(load_image(hwc), a)
    assert np.array_equal(load_image(hwc.permute(2, 0, 1)), a)  # (3, H, W), torch's layout
    assert np.array_equal(load_image(hwc.permute(2, 0, 1).float() / 255), a)  # floats in [0, 1]
    assert (load_image(torch.full((2, 4, 3), 0.5, dtype=torch.bfloat16)) == 128).all()
    assert np.array_equal(load_image(hwc.float().requires_grad_() / 255), a)
    gray = torch.from_numpy(a[..., 0])
    assert np.array_equal(load_image(gray)[..., 2], a[..., 0])
    assert np.array_equal(load_image(gray[None])[..., 1], a[..., 0])
    rgba = torch.cat([hwc, torch.full((20, 30, 1), 7, dtype=torch.uint8)], dim=2)
    assert np.array_equal(load_image(rgba.permute(2, 0, 1)), a)
    with pytest.raises(ImageError, match=r"ambiguous: \(C, H, W\) or \(H, W, C\)"):
        load_image(torch.zeros(3, 10, 3, dtype=torch.uint8))
    with pytest.raises(ImageError, match="batch tensor"):
        load_image(hwc.permute(2, 0, 1)[None])
    with pytest.raises(ImageError, match=r"expected a tensor of shape \(3, H, W\) or \(H, W, 3\)"):
        load_image(torch.zeros(5, 10, 12))
    with pytest.raises(InputError, match=r"values in \[0, 1\]"):
        load_image(hwc.float())  # 0..255 floats


def test_set_image_takes_a_tensor(tiny_checkpoint):
    import torch

    import sam3kit

    a = _rgb(40, 50)
    pred = sam3kit.ImagePredictor(sam3kit.load(tiny_checkpoint))
    pred.set_image(a)
    ref = pred.predict(points=[[20, 10]])
    pred.set_image(torch.from_numpy(a).permute(2, 0, 1).float() / 255)
    got = pred.predict(points=[[20, 10]])
    assert np.array_equal(got.masks, ref.masks) and np.array_equal(got.iou_scores, ref.iou_scores)
