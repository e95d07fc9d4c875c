"""Decode an image given as a path, a PIL image, a numpy array or a torch tensor into an RGB uint8 array (H, W, 3).

Accepted in-memory images:

- numpy arrays: (H, W, 3) RGB, also (H, W) grayscale, (H, W, 1) and (H, W, 4) (alpha dropped); channels last,
  the layout of PIL and OpenCV (a (3, H, W) array is refused with the transpose that fixes it).
- torch tensors: (3, H, W), torch's image layout, or (H, W, 3); also (H, W), (1, H, W) / (H, W, 1) and 4 channels.
  A tensor that reads both ways (such as (3, 5, 3)) is refused as ambiguous. Tensors on a GPU are copied back.
- values: uint8 (0..255, as is), uint16 (scaled to 0..255), bool (0 or 255), or floating point in [0, 1],
  rounded to 8 bits (``round(x * 255)``); a float outside [0, 1] or a NaN is an ``InputError``.

EXIF orientation is applied to files; grayscale, palette, RGBA (alpha dropped, no compositing), CMYK and 16-bit
files are converted. A decompression-bomb guard stays on: an image of more than ``MAX_PIXELS`` pixels (Pillow's
own default limit) is refused before it is decoded. Raise the limit for one call with ``load_image(path,
max_pixels=N)`` (``None``: no limit), or for the process by setting ``sam3kit.io.image.MAX_PIXELS`` (which
``ImagePredictor.set_image`` and the encoders use). This one limit governs: while the header of an image file is
read, Pillow's own process-wide guard (``PIL.Image.MAX_IMAGE_PIXELS``) is off, and the size is checked before any
pixel is decoded.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import ImageError, InputError

MAX_PIXELS: Optional[int] = 178_956_970
"""The default pixel limit (Pillow's own default, about 13k x 13k); None = no limit."""

ImageInput = Union[str, Path, "PIL.Image.Image", np.ndarray, "torch.Tensor"]  # noqa: F821

_DEFAULT = object()
_PILLOW_LIMIT_LOCK = threading.Lock()
_CHANNELS = (1, 3, 4)


def load_image(image: ImageInput, *, max_pixels=_DEFAULT) -> np.ndarray:
    """Return an RGB uint8 array (H, W, 3) for ``image`` (module docstring); raise ``ImageError`` with the reason
    otherwise (``InputError`` for float values outside [0, 1]).

    Args:
        max_pixels: the largest number of pixels (H x W) accepted; default ``MAX_PIXELS``; None = no limit.
    """
    from PIL import Image

    limit = MAX_PIXELS if max_pixels is _DEFAULT else max_pixels
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0):
        raise InputError(f"max_pixels must be a positive integer or None (no limit), got {limit!r}")
    if isinstance(image, (str, Path)):
        return _from_pil(_open(Path(image), limit), str(image), limit)
    if isinstance(image, Image.Image):
        return _from_pil(image, "PIL image", limit)
    if isinstance(image, np.ndarray):
        return _from_array(image, limit)
    if _is_tensor(image):
        return _from_tensor(image, limit)
    raise ImageError(f"expected an image path, a PIL image, an (H, W, 3) array or a (3, H, W) tensor, got "
                     f"{type(image).__name__}")


def _is_tensor(x) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a tensor exists only if torch was imported
    return torch is not None and isinstance(x, torch.Tensor)


def _open(path: Path, limit: Optional[int]):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _pillow_guard_lifted():
                img = Image.open(path)  # reads the header only
            _check_size(img.size, str(path), limit)  # before any pixel is decoded
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({e}); raise the limit with "
                         "max_pixels= if the image is genuine") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image format Pillow can read (JPEG, PNG, WebP, TIFF, BMP, ...)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: the image is corrupt or truncated ({e})") from e
    return img


@contextlib.contextmanager
def _pillow_guard_lifted():
    """Pillow's own process-wide guard (``Image.MAX_IMAGE_PIXELS``) off while one image header is read, so that
    ``_check_size`` and its limit decide (with its message). Header reads are serialised while it is off."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is None:
        yield
        return
    with _PILLOW_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_size(size: tuple[int, int], name: str, limit: Optional[int]) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"{name}: empty image ({w}x{h})")
    if limit is not None and w * h > limit:
        raise ImageError(f"{name}: {w}x{h} pixels is over the limit of {limit} (possible decompression bomb); "
                         "downscale it first, or raise the limit (max_pixels=, sam3kit.io.image.MAX_PIXELS)")


def _from_pil(img, name: str, limit: Optional[int]) -> np.ndarray:
    from PIL import ImageOps

    _check_size(img.size, name, limit)
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


def _from_tensor(t, limit: Optional[int]) -> np.ndarray:
    """A torch tensor (3, H, W) or (H, W, 3) (module docstring) -> (H, W, 3) uint8."""
    import torch

    shape = tuple(t.shape)
    if t.dim() == 4 and shape[0] == 1:
        raise ImageError(f"expected one image, got a batch tensor of shape {shape}; pass t[0] (or, for several "
                         "images, a list of tensors to set_images)")
    if t.dim() == 3:
        first, last = shape[0] in _CHANNELS, shape[2] in _CHANNELS
        if first and last:
            raise ImageError(f"tensor of shape {shape} is ambiguous: (C, H, W) or (H, W, C)? Pass it as a PIL image "
                             "or an (H, W, C) numpy array")
        if first:
            t = t.permute(1, 2, 0)
        elif not last:
            raise ImageError(f"expected a tensor of shape (3, H, W) or (H, W, 3) (1 or 4 channels also), got {shape}")
    elif t.dim() != 2:
        raise ImageError(f"expected a tensor of shape (3, H, W) or (H, W, 3), got {shape}")
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return _from_array(t.contiguous().numpy(), limit, what="tensor")


def _from_array(a: np.ndarray, limit: Optional[int], what: str = "array") -> np.ndarray:
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim == 3 and a.shape[0] in _CHANNELS and a.shape[2] not in _CHANNELS and what == "array":
        raise ImageError(f"expected an array of shape (H, W, 3), got {a.shape}, channels first: pass "
                         "np.ascontiguousarray(a.transpose(1, 2, 0))")
    if a.ndim != 3 or a.shape[2] not in _CHANNELS:
        raise ImageError(f"expected an {what} of shape (H, W, 3) (or (H, W), (H, W, 1), (H, W, 4)), got {a.shape}")
    _check_size((a.shape[1], a.shape[0]), what, limit)
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float64) / 65535.0 * 255.0).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = _from_float(a, what)
    elif a.dtype != np.uint8:
        raise ImageError(f"expected uint8 values (or uint16, bool, or floats in [0, 1]), got {a.dtype}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def _from_float(a: np.ndarray, what: str) -> np.ndarray:
    """Floats in [0, 1] -> uint8 ``round(x * 255)``; anything outside [0, 1] (or NaN) is refused."""
    lo, hi = float(np.min(a)), float(np.max(a))  # NaN propagates into both
    if not (0.0 <= lo and hi <= 1.0):
        hint = " (it looks like 0..255: divide by 255, or pass uint8)" if 1.0 < hi <= 255.0 and lo >= 0.0 else ""
        raise InputError(f"a floating-point {what} must hold values in [0, 1]; got values from {lo:g} to {hi:g}{hint}")
    return np.round(a.astype(np.float32) * 255.0).astype(np.uint8)
