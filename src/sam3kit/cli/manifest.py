"""``result.json``, the manifest of one job's output folder: what the job ran with and the files it wrote.

A job's options record holds everything its outputs depend on; a re-run whose record matches, and whose listed
files all exist, would write the same files, so it skips the job (``is_complete``). Records match on content, not
on file times or spellings of a path (``compare``): the input is identified by the SHA-256 of its bytes, the model
by its content fingerprint (``Sam3Model.fingerprint``, which the manifest records). ``.sam3kit-partial.json``
lists the files a job is writing until its manifest is written (``job_outputs.py``), and whose input it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

RESULT_NAME = "result.json"
PARTIAL_NAME = ".sam3kit-partial.json"
MANIFEST_VERSION = 2

SAME, DIFFERS, UNKNOWN = "same", "differs", "unknown"  # what ``compare`` can say about the model
# option keys of a record shown under another name than ``--key-with-dashes``
FLAG_NAMES = {"formats": "--format", "id_map": "--id-map", "dtype": "--dtype", "fast": "--fast"}


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes. Raises ``OSError`` if it cannot be read."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def job_record(path: Path, model_id: dict[str, Any], runtime: dict[str, Any], kind: str = "image") -> dict[str, Any]:
    """The part of a job's options record every command shares: sam3kit and manifest versions, the input file's
    identity (path, size, SHA-256 of its bytes) under ``kind``, the model (``model_identity``) and the runtime flags
    (``runtime_record``). A command adds its own options after these keys. Raises ``OSError`` if the input file
    cannot be read."""
    from .. import __version__

    st = path.stat()
    rec = {"sam3kit": __version__, "manifest": MANIFEST_VERSION,
           kind: {"path": str(path.resolve()), "bytes": st.st_size, "sha256": file_sha256(path)},
           "model": dict(model_id)}
    rec.update(runtime)
    return rec


def as_read_back(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in the form it has once written to and read back from ``result.json`` (tuples become lists)."""
    return json.loads(json.dumps(record))


def read_manifest(folder: Path) -> Optional[dict]:
    """The manifest of ``folder``, or None if it has none (or an unreadable one)."""
    return _read_dict(folder / RESULT_NAME)


def read_partial(folder: Path) -> Optional[dict]:
    """The partial-run marker of ``folder`` (``job_outputs.py``), or None."""
    return _read_dict(folder / PARTIAL_NAME)


def _read_dict(path: Path) -> Optional[dict]:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def compare(old: Any, new: dict[str, Any], kind: str = "image") -> tuple[list[str], str]:
    """How an earlier run's options record ``old`` differs from ``new``.

    Returns:
        differences: one phrase per differing entry other than the model, for the user ("the image differs (its
            content changed)", "option --threshold differs: 0.5 before, 0.3 now", "the prompts differ"); the input's
            path is not compared (a moved or renamed input with the same bytes is the same input).
        model: ``SAME`` (same files, or same fingerprint), ``DIFFERS`` (other fingerprint) or ``UNKNOWN`` (other
            files and no fingerprint in ``new`` yet: the model must be loaded to tell).
    """
    if not isinstance(old, dict):
        return ["the earlier run's record is unreadable"], UNKNOWN
    diffs = []
    for key in dict.fromkeys([*new, *old]):
        if key == "model":
            continue
        a, b = old.get(key), new.get(key)
        if key == kind:
            a_id = {k: v for k, v in (a or {}).items() if k != "path"} if isinstance(a, dict) else a
            b_id = {k: v for k, v in (b or {}).items() if k != "path"} if isinstance(b, dict) else b
            if a_id != b_id:
                diffs.append(f"the {kind} differs (its content changed)")
        elif a != b:
            diffs.append(_difference(key, a, b))
    return diffs, compare_models(old.get("model"), new.get("model"))


def compare_models(old: Any, new: Any) -> str:
    """``SAME`` / ``DIFFERS`` / ``UNKNOWN`` for two model records (``model_args.model_identity``): the content
    fingerprints when both have one; else the same source (a Hub id) is the same model, and another source is
    ``UNKNOWN`` until ``new`` has a fingerprint."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return SAME if old == new else UNKNOWN
    fa, fb = old.get("fingerprint"), new.get("fingerprint")
    if fa and fb:
        return SAME if fa == fb else DIFFERS
    if {k: v for k, v in old.items() if k != "fingerprint"} == {k: v for k, v in new.items() if k != "fingerprint"}:
        return SAME
    return UNKNOWN if not fb else DIFFERS


def _difference(key: str, a: Any, b: Any) -> str:
    if key == "sam3kit":
        return f"the sam3kit version differs: {a} before, {b} now"
    if key == "manifest":
        return f"the manifest version differs: {a} before, {b} now"
    if key == "prompts":
        return "the prompts differ"
    flag = FLAG_NAMES.get(key, "--" + key.replace("_", "-"))
    return f"option {flag} differs: {_show(a)} before, {_show(b)} now"


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, list):
        return ",".join(map(str, v))
    return str(v)


def missing_files(folder: Path, manifest: dict) -> Optional[list[str]]:
    """The files a manifest lists that are not in ``folder`` (None if it lists no valid "files")."""
    files = manifest.get("files")
    if not isinstance(files, list):
        return None
    return [f for f in files if isinstance(f, str) and not (folder / f).is_file()]


def is_complete(folder: Path, options: dict, kind: str = "image") -> bool:
    """True when ``folder`` holds the outputs of a finished run with these options (``compare``: no difference,
    the same model) and every file it lists."""
    m = read_manifest(folder)
    if m is None:
        return False
    diffs, model = compare(m.get("options"), options, kind)
    return not diffs and model == SAME and missing_files(folder, m) == []


def listed_files(path: Path) -> list[str]:
    """Plain file names listed under "files" in a JSON file of ours (none if absent or unreadable); never
    ``result.json`` itself, nor a name with a folder in it."""
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files or [] if isinstance(f, str) and f == Path(f).name and f not in ("", ".", "..")
            and f != RESULT_NAME]
