"""Uploaded image bytes -> an RGB uint8 array (H, W, 3), with the server's pixel limit checked from the header
before any pixel is decoded. Each refusal is an ``ApiError``: empty body 400, not an image 415, too many pixels
413, a corrupt or truncated file 422."""

from __future__ import annotations

import io
import warnings

import numpy as np

from ..errors import Sam3Error
from ..io.image import load_image
from .errors import ApiError

FORMATS = "JPEG, PNG, WebP, TIFF, BMP, GIF, ..."


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """``data`` (the bytes of an image file) -> (H, W, 3) uint8, EXIF orientation applied (``load_image``)."""
    img = _open(data, max_pixels)
    try:
        img.load()
        return load_image(img, max_pixels=max_pixels)
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, Sam3Error):
            raise ApiError(422, "invalid_image", e.message) from e
        raise ApiError(422, "invalid_image", f"the image is corrupt or truncated ({e})") from e


def _open(data: bytes, max_pixels: int):
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(400, "empty_body", "the request has no image: send the image file's bytes as the body, or "
                                          "as a multipart form field named 'file'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides
            img = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as e:
        raise ApiError(413, "image_too_large", f"the image is over the server's pixel limit ({e})") from e
    except UnidentifiedImageError as e:
        raise ApiError(415, "not_an_image", f"the body is not an image in a format the server reads ({FORMATS})") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ApiError(422, "invalid_image", f"the image header is unreadable ({e})") from e
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ApiError(422, "invalid_image", f"empty image ({w}x{h})")
    if w * h > max_pixels:
        raise ApiError(413, "image_too_large", f"the image has {w}x{h} = {w * h} pixels, over the server's limit of "
                                               f"{max_pixels} (--max-image-pixels); downscale it first")
    return img
