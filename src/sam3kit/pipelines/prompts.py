"""Validation of user prompts (boxes, labels, points, masks) with errors that say what was expected.

Everything here takes plain Python / numpy / torch input in pixel coordinates of the original image and returns
float32 numpy arrays, or raises ``InputError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError


def as_array(x: Any, name: str) -> np.ndarray:
    """Numbers (nested lists, numpy, torch) -> float64 array; ``InputError`` for anything else, NaN or infinity."""
    try:
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} must be numbers, got {type(x).__name__}: {e}") from e
    if not np.all(np.isfinite(a)):
        shown = a.tolist() if a.size <= 16 else f"an array of shape {list(a.shape)}"
        raise InputError(f"{name} contains NaN or infinity: {shown}")
    return a


def check_boxes(boxes: Any, width: int, height: int, *, name: str = "boxes", single: bool = False) -> np.ndarray:
    """Pixel xyxy boxes inside a ``width`` x ``height`` image -> (N, 4) float32 (or (4,) with ``single``)."""
    a = as_array(boxes, name)
    if single:
        if a.shape != (4,):
            raise InputError(f"{name} must be one box [x1, y1, x2, y2] in pixels, got shape {list(a.shape)}")
        a = a[None]
    elif a.ndim == 1 and a.shape == (4,):
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 4:
        raise InputError(f"{name} must have shape (N, 4) as pixel [x1, y1, x2, y2], got shape {list(a.shape)}")
    if a.shape[0] == 0:
        raise InputError(f"{name} is empty; pass None for no boxes")
    for i, (x1, y1, x2, y2) in enumerate(a.tolist()):
        if x2 <= x1 or y2 <= y1:
            what = "inverted" if (x2 < x1 or y2 < y1) else "degenerate (zero width or height)"
            raise InputError(f"{name}[{i}] = {[x1, y1, x2, y2]} is {what}: expected x1 < x2 and y1 < y2 in pixels")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise InputError(
                f"{name}[{i}] = {[x1, y1, x2, y2]} lies outside the {width}x{height} image: pixel coordinates must "
                f"be within [0, {width}] x [0, {height}]; clip the box to the image")
    return (a[0] if single else a).astype(np.float32)


def check_labels(labels: Any, n: int, *, name: str, default: int = 1) -> np.ndarray:
    """Labels 0/1 (bools accepted), one per prompt -> (n,) int64. ``None`` means all ``default``."""
    if labels is None:
        return np.full((n,), default, dtype=np.int64)
    a = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    if a.ndim == 0:
        a = a[None]
    if a.ndim != 1 or a.shape[0] != n:
        raise InputError(f"{name} must have one label per prompt ({n}), got shape {list(a.shape)}")
    if a.dtype == np.bool_:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.number) or not np.all(np.isin(a, (0, 1))):
        raise InputError(f"{name} must be 1 (positive / foreground) or 0 (negative / background), got {a.tolist()}")
    return a.astype(np.int64)


def check_points(points: Any, width: int, height: int, *, name: str = "points") -> np.ndarray:
    """Pixel (x, y) points inside the image -> (N, 2) float32."""
    a = as_array(points, name)
    if a.ndim == 1 and a.shape == (2,):
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0:
        raise InputError(f"{name} must have shape (N, 2) as pixel (x, y), N >= 1; got shape {list(a.shape)}")
    for i, (x, y) in enumerate(a.tolist()):
        if not (0 <= x <= width and 0 <= y <= height):
            raise InputError(f"{name}[{i}] = ({x}, {y}) lies outside the {width}x{height} image")
    return a.astype(np.float32)


def check_mask_input(mask: Any, size: int, *, name: str = "mask_input") -> np.ndarray:
    """Low-resolution mask logits as returned in ``low_res_logits``: (size, size) or (1, size, size) ->
    (1, size, size)."""
    a = as_array(mask, name)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.shape != (size, size):
        raise InputError(
            f"{name} must be the ({size}, {size}) low-resolution logits of a previous prediction "
            f"(result.low_res_logits[i]), got shape {list(a.shape)}")
    return a[None].astype(np.float32)


def check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError("text is empty; give a noun phrase such as 'a red car', or use boxes only")
    return text


def check_threshold(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}") from e
    if not 0.0 <= v <= 1.0 or v != v:
        raise InputError(f"{name} must be in [0, 1], got {value!r}")
    return v

