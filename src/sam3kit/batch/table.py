"""The rows of a batch job's output, as Arrow tables, and the shard files that hold them.

One row per instance found, one row per (image, prompt) that found nothing, one row per image or prompt that
failed; so a reader tells "nothing found" (a row with ``instance`` null and ``error`` null) from "not processed"
(no row). Columns (``SCHEMA``):

==============  ===========================  =====================================================================
image_id        int64                        the image's position in the job's inputs, from 1
path            string                       the absolute path read
width, height   int32                        the image's size in pixels (null when it could not be decoded)
prompt_index    int32                        the prompt's position in the job (null for an error of the image)
prompt          string                       the prompt: its text, or "exemplars" for exemplar boxes alone
presence        float32                      probability that the concept is in the image
instance        int32                        the instance's position in the prompt's result (the detector's query
                                             order, as ``ImagePredictor.segment`` returns it); null: none found
score           float32                      class x presence probability
box             fixed_size_list<float32>[4]  pixel xyxy of the original image (the model's box, not clipped)
area            int64                        mask pixels
rle             struct<size, counts>         the mask as COCO RLE: size [height, width], compressed counts
                                             (``sam3kit.io.rle.decode_rle`` reads a row's value)
error           string                       why the image or prompt failed (null otherwise)
==============  ===========================  =====================================================================

Rows are ordered by image, prompt and instance. A shard file (``shard-00012.parquet``) holds the rows of one shard's
images and, in its Parquet metadata under ``sam3kit.batch``, the shard's identity: its index, the digest of the
job's options and model (``config``), and its input list (``[image_id, path, file_name]`` per image) with its
digest. It is written under a temporary name and renamed, so it exists only complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import InputError

META_KEY = b"sam3kit.batch"
COLUMNS = ("image_id", "path", "width", "height", "prompt_index", "prompt", "presence", "instance", "score", "box",
           "area", "rle", "error")


def require_pyarrow() -> None:
    """Raise ``InputError`` naming the extra to install when pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError("sam3kit batch writes Parquet files and needs pyarrow: pip install 'sam3kit[batch]' "
                         "(or pip install pyarrow)") from None


def schema():
    """The Arrow schema of the rows (module docstring)."""
    import pyarrow as pa

    return pa.schema([
        ("image_id", pa.int64()), ("path", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
        ("prompt_index", pa.int32()), ("prompt", pa.string()), ("presence", pa.float32()),
        ("instance", pa.int32()), ("score", pa.float32()), ("box", pa.list_(pa.float32(), 4)),
        ("area", pa.int64()),
        ("rle", pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])),
        ("error", pa.string()),
    ])


class RowBuilder:
    """Accumulates rows column by column; ``table()`` gives them as an Arrow table of ``schema()``."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in COLUMNS}

    def __len__(self) -> int:
        return len(self.cols["image_id"])

    def add(self, image_id: int, path: str, *, width: Optional[int] = None, height: Optional[int] = None,
            prompt_index: Optional[int] = None, prompt: Optional[str] = None, presence: Optional[float] = None,
            instance: Optional[int] = None, score: Optional[float] = None, box: Optional[Sequence[float]] = None,
            area: Optional[int] = None, rle: Optional[dict] = None, error: Optional[str] = None) -> None:
        c = self.cols
        c["image_id"].append(image_id)
        c["path"].append(path)
        c["width"].append(width)
        c["height"].append(height)
        c["prompt_index"].append(prompt_index)
        c["prompt"].append(prompt)
        c["presence"].append(presence)
        c["instance"].append(instance)
        c["score"].append(score)
        c["box"].append(None if box is None else [float(v) for v in box])
        c["area"].append(area)
        c["rle"].append(rle)
        c["error"].append(error)

    def table(self):
        import pyarrow as pa

        return pa.Table.from_pydict(self.cols, schema=schema())


def sort_rows(table):
    """``table`` in the output order: image, then prompt, then instance (nulls first: an image's error row, a
    prompt's "nothing found" row). Rows arrive from workers in any order; this makes the files deterministic."""
    import pyarrow.compute as pc

    keys = ["image_id", "prompt_index", "instance"]
    try:  # pyarrow >= 25: the null placement per key
        idx = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_start") for k in keys])
    except (TypeError, ValueError):  # older pyarrow: one placement for all keys
        idx = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys], null_placement="at_start")
    return table.take(idx)


# ----------------------------------------------------------------------------- shard files
def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"


def write_shard(path: Path, table, identity: dict[str, Any]) -> None:
    """Write ``table`` (sorted with ``sort_rows``) with the shard's ``identity`` in its metadata, atomically: a
    temporary file in the same folder, renamed onto ``path`` once complete (replacing an older file)."""
    import pyarrow.parquet as pq

    from ..io.writers import atomic_write

    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(identity, separators=(",", ":")).encode("utf-8")
    table = table.replace_schema_metadata(meta)
    atomic_write(path, lambda fh: pq.write_table(table, fh, compression="zstd"), overwrite=True)


def read_identity(path: Path) -> Optional[dict[str, Any]]:
    """The identity a shard file records (``write_shard``), or None for a missing or unreadable file, or one that
    is not a shard of sam3kit."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        value = json.loads(meta[META_KEY].decode("utf-8"))
    except Exception:  # noqa: BLE001 - missing, not Parquet, no metadata of ours: pyarrow's errors vary
        return None
    return value if isinstance(value, dict) else None


def read_shard(path: Path):
    """The rows of one shard file (an Arrow table)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{path} is not a readable shard file ({e})") from None
