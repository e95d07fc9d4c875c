"""Image decoding: formats, EXIF orientation, conversions and every refusal path."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sam3kit.errors import ImageError
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
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow's own guard also ends as ImageError
    monkeypatch.setattr(image_mod, "MAX_PIXELS", 10**9)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(tmp_path / "big.png")


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8), "x" * 0])
def test_bad_arrays(bad):
    with pytest.raises(ImageError):
        load_image(bad)


def test_wrong_type():
    with pytest.raises(ImageError, match="expected an image path"):
        load_image(12)
