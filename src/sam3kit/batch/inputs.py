"""The images of a batch job, in a fixed order, from its ``INPUTS``.

Each input is one of:

- a folder: its images, recursively, sorted by their path below it (hidden names skipped, and anything inside the
  job's output folder), as ``sam3kit segment`` walks folders (``cli/inputs.py``);
- a glob pattern (``"shots/**/*.png"``, ``**`` recursive), sorted;
- a text file of paths (``.txt``, ``.lst``, ``.list``): one path per line, blank lines and lines starting with
  ``#`` skipped;
- a table (``.parquet``, ``.pq``, ``.csv``, ``.tsv``) with a column of paths (``path`` unless told otherwise);
- an image file.

Relative paths in lists and tables are relative to the folder of the list or table. The images of all inputs are
concatenated in order, a path met twice kept at its first place, and numbered from 1: the ``image_id``. Paths are
made absolute (not resolving symbolic links) so that workers in other folders, or on other machines sharing the
file system, read the same files. Files named in lists and tables are not opened here: a missing or broken one
gives a row with its error in the output.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional, Sequence

from ..errors import InputError

LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
TABLE_SUFFIXES = frozenset({".parquet", ".pq", ".csv", ".tsv"})


@dataclass(frozen=True)
class BatchImage:
    """One image of a job.

    image_id: its position in the job's inputs, from 1 (the COCO image id).
    path: the absolute path that is read.
    file_name: the name the merged COCO file gives it: its path below the folder (or below the fixed part of the
        pattern) it was found in, the entry as written in a list or table, or the name of a file given alone.
    """

    image_id: int
    path: str
    file_name: str


@dataclass
class InputList:
    """What ``collect`` found: the images in order and what folders held but were not taken (counts by reason)."""

    images: list[BatchImage] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)

    def fingerprint(self) -> str:
        """SHA-256 of the ordered absolute paths: what the shards are cut from. (Files are identified by path, not
        by content: an image rewritten in place is not noticed; use ``force`` to redo it.)"""
        h = hashlib.sha256()
        for im in self.images:
            h.update(im.path.encode("utf-8", "surrogateescape") + b"\n")
        return h.hexdigest()


def collect(specs: Sequence[str], *, path_column: str = "path", exclude: Iterable[Optional[Path]] = ()) -> InputList:
    """The images of ``specs`` (module docstring). ``exclude``: folders whose contents are never taken from a
    folder or pattern input (the job's output folder).

    Raises ``InputError`` for an input that gives no image (an empty folder, a pattern matching nothing, a missing
    file, a table without the path column), naming it.
    """
    from ..cli.inputs import _GLOB_CHARS, _glob, _walk

    if isinstance(specs, (str, Path)):
        specs = [specs]
    if not specs:
        raise InputError("no inputs: give a folder, a glob pattern, a list of paths or a table with a path column")
    excluded = {Path(e).expanduser().resolve() for e in exclude if e is not None}
    res = InputList()
    found: list[tuple[str, str]] = []  # (absolute path, file_name)
    for spec in map(str, specs):
        p = Path(spec).expanduser()
        if p.is_dir():
            files = _walk(p, True, excluded, res.ignored)
            if not files:
                raise InputError(f"no image files in folder {spec}")
            found += [(os.path.abspath(f), str(PurePosixPath(*f.relative_to(p).parts))) for f in files]
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            found += _from_list(p)
        elif p.is_file() and p.suffix.lower() in TABLE_SUFFIXES:
            found += _from_table(p, path_column)
        elif p.is_file():
            found.append((os.path.abspath(p), p.name))
        elif _GLOB_CHARS.search(spec):
            files = _glob(p, excluded, res.ignored)
            if not files:
                raise InputError(f"no image file matches {spec}")
            found += [(os.path.abspath(f), str(rel)) for f, rel in files]
        elif p.exists():
            raise InputError(f"{spec} is not a regular file or folder")
        else:
            raise InputError(f"{spec}: no such file or folder (expected a folder, a glob pattern, a list of paths "
                             "(.txt) or a table (.parquet, .csv) with a path column)")
    seen: set[str] = set()
    for path, name in found:
        if path in seen:
            continue
        seen.add(path)
        res.images.append(BatchImage(len(res.images) + 1, path, name))
    return res


def _from_list(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file of paths (one per line)") from None
    entries = [s.strip() for s in lines]
    out = [_entry(path.parent, s) for s in entries if s and not s.startswith("#")]
    if not out:
        raise InputError(f"{path} lists no paths (one per line expected; '#' starts a comment)")
    return out


def _from_table(path: Path, column: str) -> list[tuple[str, str]]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        pq = _pyarrow_parquet()
        try:
            schema = pq.read_schema(path)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a file that is no Parquet
            raise InputError(f"{path} is not a readable Parquet file ({e})") from None
        if column not in schema.names:
            raise InputError(f"{path} has no column {column!r} (columns: {', '.join(schema.names)}); name the column "
                             "of paths with --path-column")
        values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    else:
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                names = reader.fieldnames or []
                if column not in names:
                    raise InputError(f"{path} has no column {column!r} (columns: {', '.join(names) or 'none'}); name "
                                     "the column of paths with --path-column")
                values = [row[column] for row in reader]
        except OSError as e:
            raise InputError(f"{path}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path} is not a UTF-8 text table") from None
    out = [_entry(path.parent, str(v).strip()) for v in values if v is not None and str(v).strip()]
    if not out:
        raise InputError(f"{path}: the column {column!r} holds no paths")
    return out


def _entry(base: Path, text: str) -> tuple[str, str]:
    return os.path.abspath(os.path.join(base, os.path.expanduser(text))), text


def _pyarrow_parquet():
    from .table import require_pyarrow

    require_pyarrow()
    import pyarrow.parquet as pq

    return pq
