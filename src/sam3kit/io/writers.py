"""Result writers: binary mask PNGs, instance-id maps, JSON records with COCO RLE, COCO documents; every file
written atomically, and JSON always strict (a value that is not finite is written as ``null``, with a warning).

Atomic: the bytes go to a hidden temporary file in the destination folder, which is then renamed onto the final
name, so a reader (or a re-run after a crash) never sees a half-written file. No-overwrite: unless ``overwrite`` is
True an existing file is never replaced (``OutputError``); the check and the rename are one step (a hard link)
where the file system allows it.

Instance records are plain dicts, the one form the JSON, COCO, table and overlay writers share::

    {"id": 0, "prompt": 0, "index": 0, "label": "yellow bus", "score": 0.91, "iou": None, "box": [x1, y1, x2, y2],
     "area": 13204, "mask_index": None, "query_index": 17, "rle": {"size": [H, W], "counts": "..."}}

Records keep the order of the result they come from: ``index`` is the instance's position in it (``masks[index]``
of a ``SegmentResult``, the candidate mask of a ``PredictResult``), so a concept's records are in the detector's
query order, as ``segment`` returns them. ``box`` is pixel xyxy of the original image (the model's box for concept
prompts, the mask's bounds for interactive ones); ``score`` is the detection score (concept) or None; ``iou`` the
predicted IoU (interactive).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..errors import InputError, OutputError
from .rle import encode_rle, rle_area

PathLike = Union[str, Path]
log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- atomic files
def atomic_write(path: PathLike, data: Union[bytes, Callable[[Any], None]], *, overwrite: bool = False) -> Path:
    """Write ``data`` (bytes, or a function writing into a binary file object) to ``path`` atomically.

    Raises ``OutputError`` if ``path`` exists and ``overwrite`` is False, or if it cannot be written.
    Missing parent folders are created.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise OutputError(f"{path} exists already; pass --force (overwrite=True) to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    except OSError as e:
        raise OutputError(f"cannot write into {path.parent}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_exclusive(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, FileExistsError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
        raise
    return path


def _publish_exclusive(tmp: str, path: Path) -> None:
    """Rename ``tmp`` onto ``path`` only if ``path`` does not exist (atomically where hard links work)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(f"{path} exists already; pass --force (overwrite=True) to replace it") from None
    except OSError:  # no hard links here (some network / FAT file systems): check, then rename
        if path.exists():
            raise OutputError(f"{path} exists already; pass --force (overwrite=True) to replace it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: PathLike, text: str, *, overwrite: bool = False) -> Path:
    return atomic_write(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: PathLike, obj: Any, *, overwrite: bool = False, indent: Optional[int] = 2) -> Path:
    """``obj`` as strict UTF-8 JSON (``json_text``)."""
    return write_text(path, json_text(obj, indent=indent, where=str(path)) + "\n", overwrite=overwrite)


def json_text(obj: Any, *, indent: Optional[int] = 2, where: str = "JSON output") -> str:
    """``obj`` as strict JSON: numpy scalars and arrays and paths converted; NaN and infinities, which strict JSON
    parsers refuse, written as ``null`` (a warning names how many and where)."""
    bad: list[str] = []
    clean = _jsonable(obj, bad, "")
    if bad:
        log.warning("%s: %d value%s not finite (NaN or infinity), written as null: %s", where, len(bad),
                    " is" if len(bad) == 1 else "s are", ", ".join(bad[:4]) + (" ..." if len(bad) > 4 else ""))
    return json.dumps(clean, indent=indent, ensure_ascii=False, allow_nan=False)


def _jsonable(o: Any, bad: list[str], at: str) -> Any:
    if isinstance(o, dict):
        return {k: _jsonable(v, bad, f"{at}.{k}" if at else str(k)) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v, bad, f"{at}[{i}]") for i, v in enumerate(o)]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist(), bad, at)
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        bad.append(at or "value")
        return None
    if isinstance(o, Path):
        return str(o)
    if o is None or isinstance(o, (str, int, float, bool)):
        return o
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


# ----------------------------------------------------------------------------- PNG
def mask_png_bytes(mask: np.ndarray) -> bytes:
    """(H, W) bool -> an 8-bit grayscale PNG, object 255 (white) on 0 (black)."""
    from PIL import Image

    m = np.asarray(mask)
    if m.ndim != 2:
        raise InputError(f"a mask must have shape (H, W), got {list(m.shape)}")
    buf = io.BytesIO()
    Image.fromarray(np.where(m.astype(bool), 255, 0).astype(np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_mask_png(path: PathLike, mask: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write one binary mask (H, W) as a white-on-black PNG, atomically."""
    return atomic_write(path, mask_png_bytes(mask), overwrite=overwrite)


def read_mask_png(path: PathLike) -> np.ndarray:
    """A mask PNG (any mode) -> (H, W) bool, foreground where the gray value is >= 128."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")) >= 128


def id_map(masks: Sequence[np.ndarray], shape: tuple[int, int], priority: Optional[Sequence[float]] = None
           ) -> np.ndarray:
    """Instance-id map of ``masks``: (H, W) uint16, 0 background, ``i + 1`` where mask ``i`` is.

    Where masks overlap, the pixel takes the mask of highest ``priority`` (a score; ties and the default: the
    higher index). Raises ``InputError`` for more than 65535 masks or a mask of another shape.
    """
    if len(masks) > 65535:
        raise InputError(f"an id map holds at most 65535 instances, got {len(masks)}")
    out = np.zeros(shape, dtype=np.uint16)
    order = range(len(masks)) if priority is None else \
        np.argsort([(-math.inf if p is None or not math.isfinite(p) else p) for p in priority], kind="stable")
    for i in order:
        m = np.asarray(masks[i]).astype(bool)
        if m.shape != tuple(shape):
            raise InputError(f"mask {i} has shape {list(m.shape)}, expected {list(shape)}")
        out[m] = int(i) + 1
    return out


def write_id_map_png(path: PathLike, ids: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an (H, W) uint16 id map (``id_map``) as a 16-bit grayscale PNG, atomically."""
    from PIL import Image

    a = np.asarray(ids)
    if a.ndim != 2 or a.dtype != np.uint16:
        raise InputError(f"an id map must be (H, W) uint16, got {list(a.shape)} {a.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a, dtype="<u2")).save(buf, format="PNG")  # mode "I;16": 16-bit gray
    return atomic_write(path, buf.getvalue(), overwrite=overwrite)


def read_id_map_png(path: PathLike) -> np.ndarray:
    """A 16-bit id map PNG -> (H, W) uint16."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im).astype(np.uint16)


def write_image_png(path: PathLike, image: Any, *, overwrite: bool = False) -> Path:
    """Write a PIL image or an (H, W, 3) uint8 array as PNG, atomically."""
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return atomic_write(path, buf.getvalue(), overwrite=overwrite)


# ----------------------------------------------------------------------------- instance records
def mask_box(mask: np.ndarray) -> Optional[list[float]]:
    """Pixel xyxy bounds of a mask's foreground (x2, y2 exclusive: pixel edges), None when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return None
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)]


def segment_records(result: Any, label: str, prompt: int = 0, *, with_rle: bool = True) -> list[dict[str, Any]]:
    """Instance records of a ``SegmentResult`` (every instance of a concept), in the result's order (record ``i``
    is ``result.masks[i]``: the detector's query order).

    Args:
        result: a ``SegmentResult`` (masks (N, H, W), boxes (N, 4) pixel xyxy, scores (N,), query_indices (N,)).
        label: the prompt's name shown in tables and used as COCO category ("yellow bus", "visual").
        prompt: index of the prompt within the image's prompts.
    Returns:
        N dicts as in the module docstring, "id" unset (None): ids are given per image by the caller.
    """
    out = []
    for i in range(len(result.scores)):
        m = np.asarray(result.masks[i])
        rec = _record(m, label, prompt, with_rle)
        rec.update(index=i, score=float(result.scores[i]), box=[float(v) for v in result.boxes[i]],
                   query_index=int(result.query_indices[i]))
        out.append(rec)
    return out


def predict_records(result: Any, label: str, prompt: int = 0, *, indices: Optional[Sequence[int]] = None,
                    with_rle: bool = True) -> list[dict[str, Any]]:
    """Instance records of a ``PredictResult`` (one object: M candidate masks).

    Args:
        result: a ``PredictResult`` (masks (M, H, W), iou_scores (M,), best).
        indices: which of the M masks to keep (default all), in that order.
    """
    keep = range(result.masks.shape[0]) if indices is None else indices
    out = []
    for i in keep:
        m = np.asarray(result.masks[i])
        rec = _record(m, label, prompt, with_rle)
        rec.update(index=int(i), iou=float(result.iou_scores[i]), box=mask_box(m), mask_index=int(i),
                   best=bool(int(i) == int(result.best)))
        out.append(rec)
    return out


def _record(mask: np.ndarray, label: str, prompt: int, with_rle: bool) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": None, "prompt": prompt, "index": None, "label": label, "score": None, "iou": None,
                           "box": None, "area": int(mask.sum()), "mask_index": None, "query_index": None}
    if with_rle:
        rec["rle"] = encode_rle(mask)
    return rec


def coco_document(file_name: str, width: int, height: int, records: Sequence[dict[str, Any]],
                  image_id: int = 1) -> dict[str, Any]:
    """A COCO-format dataset holding one image and its instances (``pycocotools.coco.COCO`` loads it).

    Categories are the prompt labels in order of first appearance (ids from 1). Each annotation has
    ``segmentation`` (compressed RLE), ``area``, ``bbox`` (pixel x, y, w, h), ``iscrowd`` 0 and ``score``
    (detection score, or predicted IoU for interactive masks). Records must carry "rle".
    """
    cats: dict[str, int] = {}
    anns = []
    for n, r in enumerate(records, start=1):
        if "rle" not in r:
            raise InputError("coco_document needs records made with with_rle=True")
        cid = cats.setdefault(r["label"], len(cats) + 1)
        x1, y1, x2, y2 = r["box"] if r["box"] is not None else (0.0, 0.0, 0.0, 0.0)
        score = r["score"] if r["score"] is not None else r["iou"]
        anns.append({"id": n, "image_id": image_id, "category_id": cid, "segmentation": r["rle"],
                     "area": float(rle_area(r["rle"])), "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
                     "score": score})
    return {
        "info": {"description": "sam3kit segmentation"},
        "images": [{"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)}],
        "annotations": anns,
        "categories": [{"id": cid, "name": name, "supercategory": "object"} for name, cid in cats.items()],
    }


def merge_coco(documents: Sequence[dict[str, Any]], file_names: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """One COCO dataset from several (``coco_document`` outputs, one or more images each): image ids 1..N and
    annotation ids 1..M renumbered in order, categories merged by name (ids from 1 in order of first appearance).

    ``file_names``: one per image in order, replacing each image's ``file_name`` (e.g. its path below the folder
    it came from, so that equal names from different folders stay apart).
    """
    n_images = sum(len(doc.get("images", [])) for doc in documents)
    if file_names is not None and len(file_names) != n_images:
        raise InputError(f"got {len(file_names)} file names for {n_images} images")
    cats: dict[str, int] = {}
    images, anns = [], []
    for doc in documents:
        cat_names = {c["id"]: c["name"] for c in doc.get("categories", [])}
        new_image = {}
        for im in doc.get("images", []):
            entry = dict(im, id=len(images) + 1)
            if file_names is not None:
                entry["file_name"] = file_names[len(images)]
            new_image[im["id"]] = entry["id"]
            images.append(entry)
        for a in doc.get("annotations", []):
            cid = cats.setdefault(cat_names.get(a["category_id"], str(a["category_id"])), len(cats) + 1)
            anns.append(dict(a, id=len(anns) + 1, image_id=new_image[a["image_id"]], category_id=cid))
    return {
        "info": {"description": "sam3kit segmentation"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": cid, "name": name, "supercategory": "object"} for name, cid in cats.items()],
    }
