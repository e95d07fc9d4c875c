"""COCO run-length encoding of binary masks (the ``{"size": [H, W], "counts": str}`` form pycocotools reads).

Encoding and decoding go through pycocotools (a dependency of sam3kit), so what is written is exactly what COCO
tools read back. ``counts`` is the compressed LEB128-like string as text, ready for JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError


def _mask_utils():
    try:
        from pycocotools import mask as mask_utils
    except ImportError as e:  # a core dependency; only a broken install gets here
        raise ImportError("pycocotools is needed for COCO RLE: pip install pycocotools") from e
    return mask_utils


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """One binary mask -> COCO RLE.

    Args:
        mask: (H, W) bool (or 0/1 integers).
    Returns:
        ``{"size": [H, W], "counts": str}``, JSON-serialisable.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InputError(f"a mask for RLE must have shape (H, W), got {list(m.shape)}")
    rle = _mask_utils().encode(np.asfortranarray(m.astype(bool).astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (compressed ``counts`` as str or bytes, or uncompressed as a list) -> (H, W) bool mask."""
    mu = _mask_utils()
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"not a COCO RLE (expected {{'size': [H, W], 'counts': ...}}): {e}") from e
    if isinstance(counts, list):  # uncompressed RLE
        obj = mu.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    else:
        obj = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mu.decode(obj).astype(bool)


def rle_area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of a compressed COCO RLE."""
    c = rle["counts"]
    return int(_mask_utils().area({"size": list(rle["size"]), "counts": c.encode("ascii") if isinstance(c, str) else c}))


def rle_bbox(rle: dict[str, Any]) -> list[float]:
    """COCO bbox ``[x, y, w, h]`` (pixels) of the foreground of a compressed COCO RLE; zeros when empty."""
    c = rle["counts"]
    box = _mask_utils().toBbox({"size": list(rle["size"]), "counts": c.encode("ascii") if isinstance(c, str) else c})
    return [float(v) for v in box]
