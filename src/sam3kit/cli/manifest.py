"""``result.json``, the manifest of one job's output folder: what the job ran with and the files it wrote.

A job's options record holds everything its outputs depend on; a re-run whose record is equal, and whose listed
files all exist, would write the same files, so it skips the job (``is_complete``). ``.sam3kit-partial.json``
lists the files a job is writing until its manifest is written (``job_outputs.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

RESULT_NAME = "result.json"
PARTIAL_NAME = ".sam3kit-partial.json"
MANIFEST_VERSION = 1


def job_record(path: Path, model_id: dict[str, Any], runtime: dict[str, Any], kind: str = "image") -> dict[str, Any]:
    """The part of a job's options record every command shares: sam3kit and manifest versions, the input file's
    identity (path, size, time) under ``kind``, the model (``model_identity``) and the runtime flags
    (``runtime_record``). A command adds its own options after these keys. Raises ``OSError`` if the input file
    cannot be read."""
    from .. import __version__

    st = path.stat()
    rec = {"sam3kit": __version__, "manifest": MANIFEST_VERSION,
           kind: {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns},
           "model": model_id}
    rec.update(runtime)
    return rec


def as_read_back(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in the form it has once written to and read back from ``result.json`` (tuples become lists)."""
    return json.loads(json.dumps(record))


def read_manifest(folder: Path) -> Optional[dict]:
    """The manifest of ``folder``, or None if it has none (or an unreadable one)."""
    try:
        d = json.loads((folder / RESULT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def is_complete(folder: Path, options: dict) -> bool:
    """True when ``folder`` holds the outputs of a finished run with exactly these options."""
    m = read_manifest(folder)
    if m is None or m.get("options") != options:
        return False
    files = m.get("files")
    return isinstance(files, list) and all((folder / f).is_file() for f in files if isinstance(f, str))


def listed_files(path: Path) -> list[str]:
    """Plain file names listed under "files" in a JSON file of ours (none if absent or unreadable); never
    ``result.json`` itself, nor a name with a folder in it."""
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files or [] if isinstance(f, str) and f == Path(f).name and f not in ("", ".", "..")
            and f != RESULT_NAME]
