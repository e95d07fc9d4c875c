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



# ---------------------------------------------------------------------- interactive objects
Prompt = tuple  # (points, point_labels, box, mask_input) of one object, each None or the user's value
_SEVERAL = "several objects: use predict_batch, which returns one PredictResult per object"


def one_object(points: Any, point_labels: Any, box: Any, mask_input: Any) -> Prompt:
    """``predict``'s prompts of one object, with a (1, 4) box taken as (4,); ``InputError`` for no prompt or for
    shapes that describe several objects."""
    if points is None and box is None and mask_input is None:
        raise InputError("predict needs at least one prompt: points, a box or a mask_input")
    if points is not None and as_array(points, "points").ndim == 3:
        raise InputError(f"points of shape (K, N, 2) describe {_SEVERAL}")
    if box is not None:
        a = as_array(box, "box")
        if a.ndim == 2 and a.shape[0] == 1:
            box = a[0]
        elif a.ndim == 2:
            raise InputError(f"box of shape (K, 4) with K = {a.shape[0]} describes {_SEVERAL}")
    if mask_input is not None:
        a = as_array(mask_input, "mask_input")
        if a.ndim == 4 or (a.ndim == 3 and a.shape[0] > 1):
            raise InputError(f"mask_input of shape {list(a.shape)} describes {_SEVERAL}")
    return points, point_labels, box, mask_input


def split_objects(points: Any, point_labels: Any, box: Any, mask_input: Any) -> list[Prompt]:
    """``predict_batch``'s prompts of K objects -> K prompts of one object each; ``InputError`` unless every given
    kind has one entry per object (points (K, N, 2), point_labels (K, N), box (K, 4), mask_input (K, 4g, 4g) or
    (K, 1, 4g, 4g))."""
    if points is None and box is None and mask_input is None:
        raise InputError("predict_batch needs at least one prompt: points, a box or a mask_input")
    sizes = {}
    expected = (("points", points, (3,), "(K, N, 2)"), ("point_labels", point_labels, (2,), "(K, N)"),
                ("box", box, (2,), "(K, 4)"), ("mask_input", mask_input, (3, 4), "(K, 4g, 4g)"))
    for name, x, dims, shape in expected:
        if x is None:
            continue
        got = _shape(x)
        if len(got) not in dims:
            raise InputError(f"{name} must have shape {shape} for K objects, got shape {list(got)}; for one object "
                             "use predict")
        sizes[name] = got[0]
    if len(set(sizes.values())) > 1:
        raise InputError(f"every prompt of predict_batch needs one entry per object, got counts {sizes}")
    count = next(iter(sizes.values()))
    if count == 0:
        raise InputError("predict_batch got zero objects")
    return [tuple(None if x is None else x[k] for x in (points, point_labels, box, mask_input))
            for k in range(count)]


def _shape(x: Any) -> tuple[int, ...]:
    """Shape of a tensor, an array or nested lists (ragged lists: the dimensions up to the ragged one)."""
    if hasattr(x, "shape"):
        return tuple(x.shape)
    return np.asarray(x, dtype=object).shape


def check_objects(objects: list[Prompt], width: int, height: int, mask_size: int, *,
                  batched: bool) -> list[tuple]:
    """Each object's prompts checked against a ``width`` x ``height`` image: (points (N, 2) float32 | None,
    point_labels (N,) int64 | None, box (4,) float32 | None, mask_input (1, mask_size, mask_size) float32 | None),
    pixels of the original image. ``batched`` names the object in errors (``points[2]``); every object must have
    the same number of points."""
    out = []
    for k, (pk, lk, bk, mk) in enumerate(objects):
        at = f"[{k}]" if batched else ""
        p = lab = b = m = None
        if pk is not None:
            p = check_points(pk, width, height, name=f"points{at}")
            lab = check_labels(lk, p.shape[0], name=f"point_labels{at}")
        elif lk is not None:
            raise InputError("point_labels were given without points")
        if bk is not None:
            b = check_boxes(bk, width, height, name=f"box{at}", single=True)
        if mk is not None:
            m = check_mask_input(mk, mask_size, name=f"mask_input{at}")
        out.append((p, lab, b, m))
    if len({p.shape[0] for p, _, _, _ in out if p is not None}) > 1:
        raise InputError("every object of a batch must have the same number of points")
    return out
