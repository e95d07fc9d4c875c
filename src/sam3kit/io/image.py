"""Decode an image given as a path, a PIL image or an array into an RGB uint8 array (H, W, 3).

EXIF orientation is applied; grayscale, palette, RGBA (alpha dropped, no compositing), CMYK and 16-bit images are
converted. Pillow's decompression-bomb guard stays on: an image over ``MAX_PIXELS`` is refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import ImageError

MAX_PIXELS = 178_956_970  # Pillow's default limit (about 13k x 13k)

ImageInput = Union[str, Path, "PIL.Image.Image", np.ndarray]  # noqa: F821


def load_image(image: ImageInput) -> np.ndarray:
    """Return an RGB uint8 array (H, W, 3) for ``image``; raise ``ImageError`` with the reason otherwise."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        return _from_pil(_open(Path(image)), str(image))
    if isinstance(image, Image.Image):
        return _from_pil(image, "PIL image")
    if isinstance(image, np.ndarray):
        return _from_array(image)
    raise ImageError(f"expected an image path, a PIL image or an (H, W, 3) uint8 array, got {type(image).__name__}")


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            _check_size(img.size, str(path))
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image format Pillow can read (JPEG, PNG, WebP, TIFF, BMP, ...)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: the image is corrupt or truncated ({e})") from e
    return img


def _check_size(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"{name}: empty image ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name}: {w}x{h} pixels is over the limit of {MAX_PIXELS} (possible decompression bomb); "
                         "downscale it first")


def _from_pil(img, name: str) -> np.ndarray:
    from PIL import ImageOps

    _check_size(img.size, name)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        pass
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.round(arr / hi * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode == "F":
        raise ImageError(f"{name}: floating-point images are not supported; convert to 8-bit RGB first")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ImageError(f"expected an array of shape (H, W, 3) (or (H, W), (H, W, 1), (H, W, 4)), got {a.shape}")
    _check_size((a.shape[1], a.shape[0]), "array")
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float64) / 65535.0 * 255.0).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise ImageError(f"expected a uint8 (or uint16) array, got {a.dtype}; scale floats to 0..255 uint8 first")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)
