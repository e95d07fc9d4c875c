"""``merge``: a batch job's shards as one COCO file (``sam3kit batch merge DIR --coco out.json``).

The COCO dataset holds every image that was decoded (``id`` = its ``image_id``, ``file_name`` as the job's inputs
name it, its width and height), one category per prompt (ids from 1 in prompt order, name = the prompt), and one
annotation per instance: ``segmentation`` the compressed RLE, ``area`` its pixel count, ``bbox`` the model's box as
``[x, y, w, h]``, ``score``, ``iscrowd`` 0; annotation ids from 1 in row order. Images that could not be decoded are
left out (they are rows with an error in the shards) and counted.

The file is written as a stream, shard after shard (the shards are read twice: images, then annotations), so a job
of millions of images never sits in memory as one document; it appears under its name only once complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..errors import InputError, OutputError

DESCRIPTION = "sam3kit batch"


@dataclass(frozen=True)
class MergeSummary:
    """What ``merge`` wrote: images, annotations and categories in the file, images left out (not decoded) and
    shards not finished (merged with ``partial`` only)."""

    path: Path
    images: int
    annotations: int
    categories: int
    undecoded: int
    missing_shards: int


def merge(job_dir: Union[str, Path], coco: Union[str, Path], *, partial: bool = False,
          force: bool = False) -> MergeSummary:
    """Write the shards of the job in ``job_dir`` as one COCO file ``coco`` (module docstring).

    Args:
        partial: merge the finished shards of an unfinished job (default: refuse it, saying how many are missing).
        force: replace a file ``coco`` that sam3kit did not write (a COCO file of an earlier merge is replaced
            without it).
    Raises ``InputError`` for a folder without a job or an unfinished one, ``OutputError`` for a file in the way.
    """
    from ..io.writers import atomic_write
    from .job import SHARDS_DIR, read_manifest
    from .table import read_identity, require_pyarrow

    require_pyarrow()
    job_dir = Path(job_dir).expanduser()
    m = read_manifest(job_dir)
    if m is None:
        raise InputError(f"{job_dir} holds no batch job (no manifest.json): give the --out folder of a "
                         "'sam3kit batch' run")
    coco = Path(coco).expanduser()
    if coco.exists() and not force and not _is_ours(coco):
        raise OutputError(f"{coco} exists and was not written by sam3kit batch merge; pass --force to replace it")
    finished, missing = [], []
    for entry in m.get("shards") or []:
        path = job_dir / SHARDS_DIR / entry["file"]
        ident = read_identity(path) if path.exists() else None
        if ident is not None and ident.get("config") == m.get("config") \
                and ident.get("inputs_sha256") == entry.get("inputs_sha256"):
            finished.append((path, ident))
        else:
            missing.append(entry["file"])
    if missing and not partial:
        raise InputError(f"{job_dir}: {len(missing)} of {len(m.get('shards') or [])} shards are not finished (e.g. "
                         f"{missing[0]}); run the batch command again to finish them, or merge what is done with "
                         "--partial")
    labels = list((m.get("options") or {}).get("texts") or []) or ["exemplars"]
    counts = {"images": 0, "annotations": 0, "undecoded": 0}

    def write(fh) -> None:
        head = {"description": DESCRIPTION, "job": str(job_dir.resolve()),
                "model": (m.get("model") or {}).get("source"), "config": m.get("config"), "partial": bool(missing)}
        fh.write(b'{"info": ' + _dumps(head) + b', "categories": ')
        fh.write(_dumps([{"id": k + 1, "name": name, "supercategory": "object"} for k, name in enumerate(labels)]))
        fh.write(b', "images": [')
        first = True
        for path, ident in finished:
            names = {int(i): name for i, _, name in ident.get("inputs") or []}
            for im in _images(path):
                if im["width"] is None:
                    counts["undecoded"] += 1
                    continue
                entry = {"id": im["image_id"], "file_name": names.get(im["image_id"], im["path"]),
                         "width": im["width"], "height": im["height"]}
                fh.write((b"" if first else b", ") + _dumps(entry))
                first = False
                counts["images"] += 1
        fh.write(b'], "annotations": [')
        first = True
        for path, _ in finished:
            for a in _annotations(path, counts["annotations"]):
                fh.write((b"" if first else b", ") + _dumps(a))
                first = False
                counts["annotations"] += 1
        fh.write(b"]}\n")

    atomic_write(coco, write, overwrite=True)
    return MergeSummary(coco, counts["images"], counts["annotations"], len(labels), counts["undecoded"],
                        len(missing))


def _images(path: Path):
    """One dict per image of a shard (image_id, path, width, height; width None when it was not decoded)."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["image_id", "path", "width", "height"])
    seen = set()
    for row in t.to_pylist():
        if row["image_id"] in seen:
            continue
        seen.add(row["image_id"])
        yield row


def _annotations(path: Path, start: int):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["image_id", "prompt_index", "score", "box", "area", "rle", "instance"])
    t = t.filter(pc.is_valid(t.column("instance")))
    n = start
    for row in t.to_pylist():
        n += 1
        x1, y1, x2, y2 = row["box"]
        yield {"id": n, "image_id": row["image_id"], "category_id": row["prompt_index"] + 1,
               "segmentation": row["rle"], "area": float(row["area"]), "bbox": [x1, y1, x2 - x1, y2 - y1],
               "iscrowd": 0, "score": row["score"]}


def _dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(", ", ": ")).encode("utf-8")


def _is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(200)
    except OSError:
        return False
    return head.startswith(b'{"info": {"description": "' + DESCRIPTION.encode() + b'"')
