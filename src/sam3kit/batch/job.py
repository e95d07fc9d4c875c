"""A batch job's output folder: its manifest, which shards are finished, and writing the others as they complete.

``DIR/manifest.json`` records what the job is: the inputs (count and fingerprint), the model (source and
fingerprint), the options the rows depend on, the shard size and the shard list (file, first and last image id,
count, digest of its input list). ``DIR/shards/shard-NNNNN.parquet`` hold the rows (``table.py``).

Re-running a job (``prepare``): when the folder holds a job that differs (another model, other options, other
inputs or another shard size) it is refused, saying what differs, unless ``force``. Otherwise, and with ``force``,
a shard counts as finished when its file records the same options and model (``config``) and the same input list;
those are kept, the others are computed again. Shard files no longer in the plan, files of shards to recompute
and temporary files of an interrupted write are removed first, so the folder never holds rows of two jobs.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import OutputError
from .inputs import InputList
from .plan import Shard, plan_shards
from .table import read_identity

MANIFEST_NAME = "manifest.json"
SHARDS_DIR = "shards"
KIND = "sam3kit batch"
MANIFEST_VERSION = 1
_SHARD_FILE = re.compile(r"^shard-\d{5,}\.parquet$")
_TEMP_FILE = re.compile(r"^\.shard-\d{5,}\.parquet\..*\.tmp$")


@dataclass
class Job:
    """A prepared job: the plan and what is left to do."""

    out: Path
    inputs: InputList
    shard_size: int
    config: str  # digest of the model's fingerprint and the options record
    manifest: dict[str, Any]
    shards: list[Shard]
    todo: list[Shard]
    kept: list[Shard] = field(default_factory=list)

    @property
    def shard_dir(self) -> Path:
        return self.out / SHARDS_DIR

    def identity(self, shard: Shard) -> dict[str, Any]:
        """What a shard file records in its metadata (``table.write_shard``)."""
        return {"kind": KIND, "shard": shard.index, "config": self.config, "inputs_sha256": shard.inputs_digest(),
                "inputs": shard.input_list()}

    def write_manifest(self, **updates: Any) -> None:
        from ..io.writers import write_json

        self.manifest.update(updates, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_json(self.out / MANIFEST_NAME, self.manifest, overwrite=True, indent=1)


def config_digest(model: dict[str, Any], options: dict[str, Any]) -> str:
    """SHA-256 of what every row depends on besides its image: the model's fingerprint and the options record."""
    text = json.dumps({"model": model.get("fingerprint"), "options": options}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(out: Path) -> Optional[dict[str, Any]]:
    """The manifest of the job in ``out``, or None. ``OutputError`` for a ``manifest.json`` that is not a batch
    job's (the folder is someone else's)."""
    path = Path(out) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise OutputError(f"{path} is unreadable ({e}); remove it or choose another output folder") from None
    if not isinstance(m, dict) or m.get("kind") != KIND:
        raise OutputError(f"{path} is not the manifest of a sam3kit batch job; choose another output folder")
    return m


def prepare(out: Path, inputs: InputList, specs: list[str], model: dict[str, Any], options: dict[str, Any],
            shard_size: Optional[int], runtime: dict[str, Any], *, force: bool) -> Job:
    """Plan the job in ``out`` (module docstring) and write its manifest; returns what is left to do.

    Args:
        specs: the inputs as given (recorded). model: ``{"source", "fingerprint"}``. options: the options record
            (``BatchOptions.result_record``). shard_size: None for the earlier run's (else the default).
        runtime: how this run runs (engine, workers, ...), recorded for information.
    Raises ``OutputError`` when the folder holds another job and ``force`` is False, or cannot be written.
    """
    from ..cli.jobs import check_folder
    from .options import DEFAULT_SHARD_SIZE

    out = Path(out).expanduser()
    check_folder(out, "output folder")
    earlier = read_manifest(out)
    size = shard_size or (earlier or {}).get("shard_size") or DEFAULT_SHARD_SIZE
    fingerprint = inputs.fingerprint()
    if earlier is not None and not force:
        diffs = _differences(earlier, model, options, fingerprint, len(inputs.images), size)
        if diffs:
            raise OutputError(f"{out} holds a batch job that differs from this one ({'; '.join(diffs)}); pass --force "
                              "(force=True) to replace it (shards whose images, options and model are unchanged are "
                              "kept), or choose another output folder")
    config = config_digest(model, options)
    shards = plan_shards(inputs.images, size)
    shard_dir = out / SHARDS_DIR
    try:
        shard_dir.mkdir(parents=True, exist_ok=True)
        planned = {s.name for s in shards}
        for f in shard_dir.iterdir():
            if _TEMP_FILE.match(f.name) or (_SHARD_FILE.match(f.name) and f.name not in planned):
                f.unlink()
    except OSError as e:
        raise OutputError(f"cannot prepare {shard_dir}: {e.strerror or e}") from None
    job = Job(out, inputs, size, config, {}, shards, [])
    for s in shards:
        path = shard_dir / s.name
        ident = read_identity(path) if path.exists() else None
        if ident is not None and ident.get("config") == config and ident.get("inputs_sha256") == s.inputs_digest():
            job.kept.append(s)
            continue
        if path.exists():
            path.unlink()
        job.todo.append(s)
    job.manifest = {
        "kind": KIND, "manifest": MANIFEST_VERSION, "status": "running",
        "created": (earlier or {}).get("created") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": {"specs": [str(s) for s in specs], "count": len(inputs.images), "sha256": fingerprint},
        "model": dict(model), "options": options, "config": config, "shard_size": size, "runtime": runtime,
        "shards": [s.record() for s in shards],
    }
    job.write_manifest()
    return job


def _differences(earlier: dict[str, Any], model: dict[str, Any], options: dict[str, Any], fingerprint: str,
                 count: int, size: int) -> list[str]:
    out = []
    fp_old = (earlier.get("model") or {}).get("fingerprint")
    if fp_old != model.get("fingerprint"):
        out.append(f"the model differs ({(earlier.get('model') or {}).get('source')} before, {model.get('source')} "
                   "now, other weights)")
    old = earlier.get("options") or {}
    for key in sorted(set(old) | set(options)):
        if old.get(key) != options.get(key):
            out.append(f"{key}: {_short(old.get(key))} before, {_short(options.get(key))} now")
    inp = earlier.get("inputs") or {}
    if inp.get("sha256") != fingerprint:
        out.append(f"the inputs differ ({inp.get('count')} images before, {count} now)")
    if earlier.get("shard_size") != size:
        out.append(f"shard size: {earlier.get('shard_size')} before, {size} now")
    return out


def _short(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."
