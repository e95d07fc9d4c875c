"""The official image preprocessing in numpy: square resize (aspect ratio not kept), then [-1, 1].

``resize_uint8`` is the bilinear antialiased resize that ``sam3kit.pipelines.preprocess`` runs through torch's
uint8 kernel (which follows PIL's algorithm): per axis, the triangle filter widened by the downscale factor, its
weights normalised, rounded to int16 fixed point with the largest precision that keeps the largest weight below
2^15, and each output byte ``(sum(w * x) + 2^(p-1)) >> p`` clamped to 0..255; the horizontal pass runs first, on
uint8 values, then the vertical one. It gives torch's CPU bytes exactly (checked on many sizes in the tests); PIL
itself (22 fractional bits) differs by one level in some pixels. No PyTorch here.
"""

from __future__ import annotations

import numpy as np

from .manifest import IMAGE_MEAN, IMAGE_STD


def pixel_values(images: list[np.ndarray], size: int) -> np.ndarray:
    """RGB uint8 arrays (H, W, 3), any sizes -> (B, 3, size, size) float32 in [-1, 1] (the ``pixel_values`` input)."""
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    mean = np.asarray(IMAGE_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGE_STD, dtype=np.float32)[:, None, None]
    for i, img in enumerate(images):
        x = resize_uint8(img, size).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
        out[i] = (x - mean) / std
    return out


def resize_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 -> (size, size, C) uint8, bilinear with antialiasing (module docstring)."""
    return _resize_axis(_resize_axis(image, size, axis=1), size, axis=0)


def _resize_axis(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    in_size = image.shape[axis]
    if in_size == out_size:
        return image
    index, weights, precision = _filter(in_size, out_size)
    x = np.moveaxis(image, axis, 0)
    acc = np.full((out_size,) + x.shape[1:], 1 << (precision - 1), dtype=np.int64)
    shape = (out_size,) + (1,) * (x.ndim - 1)
    for k in range(index.shape[1]):
        acc += weights[:, k].reshape(shape) * x[index[:, k]]
    out = np.clip(acc >> precision, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def _filter(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Source indices (out, K), int16-range integer weights (out, K) and their precision in bits for one axis."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    centre = scale * (np.arange(out_size, dtype=np.float64) + 0.5)
    start = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    stop = np.minimum((centre + support + 0.5).astype(np.int64), in_size)
    count = stop - start
    j = np.arange(int(count.max()))[None, :]
    w = np.clip(1.0 - np.abs((j + start[:, None] - centre[:, None] + 0.5) * inv), 0.0, None)
    w = np.where(j < count[:, None], w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = w / np.where(total > 0, total, 1.0)
    precision = 0
    while precision < 22 and int(0.5 + w.max() * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = w * (1 << precision)
    weights = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)
    return np.minimum(start[:, None] + j, in_size - 1), weights, precision
