"""Writing one job's output folder as a unit: its files, then its manifest ``result.json`` last.

Each file is written atomically (``sam3kit.io.writers``). While a job writes, ``.sam3kit-partial.json`` lists the
files this run (or an interrupted earlier one) owns: a re-run may overwrite those without ``--force``; any other
existing file is refused without it (``OutputError``, before anything is written). With ``--force`` the files the
old manifest lists are owned too, and the old manifest is removed first, so the folder reads as incomplete until the
new one is written. Files of the earlier run that this run does not write again are removed at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from .manifest import PARTIAL_NAME, RESULT_NAME, listed_files


class JobOutputs:
    """The planned files of one job's folder, between ``begin`` (ownership checked) and ``commit`` (manifest
    written). Write each planned file with ``overwrite=outputs.may_overwrite(name)``."""

    def __init__(self, folder: Path, planned: list[str], owned: set[str], force: bool) -> None:
        self.folder = folder
        self.planned = planned
        self.owned = owned
        self.force = force

    @classmethod
    def begin(cls, folder: Path, planned: Sequence[str], *, force: bool,
              owner: Optional[dict[str, Any]] = None) -> "JobOutputs":
        """Check that the ``planned`` file names (plain names, ``result.json`` excluded) may be written into
        ``folder`` and mark them as this run's; raises ``OutputError`` naming the first file that is not ours.
        ``owner`` (the input's identity: path, sha256) is recorded in the marker, so that another input's run
        never takes the folder over (``jobs.plan_jobs``)."""
        from ..errors import OutputError
        from ..io.writers import write_json

        planned = list(planned)
        owned = set(listed_files(folder / PARTIAL_NAME)) | (set(listed_files(folder / RESULT_NAME)) if force
                                                             else set())
        if not force:
            clash = [n for n in planned + [RESULT_NAME] if (folder / n).exists() and n not in owned]
            if clash:
                raise OutputError(f"{folder / clash[0]} exists already; pass --force to overwrite, or choose "
                                  "another --out")
        marker: dict[str, Any] = {"files": sorted(owned | set(planned))}
        if owner is not None:
            marker["input"] = owner
        write_json(folder / PARTIAL_NAME, marker, overwrite=True)
        if force and (folder / RESULT_NAME).exists():
            (folder / RESULT_NAME).unlink()  # the folder is incomplete until the new result.json is written
        return cls(folder, planned, owned, force)

    def may_overwrite(self, name: str) -> bool:
        """Whether the planned file ``name`` may replace an existing file (``--force``, or a file of ours)."""
        return self.force or name in self.owned

    def commit(self, manifest: dict[str, Any]) -> list[str]:
        """Write ``manifest`` as ``result.json``, remove the earlier run's files not written again and the
        partial marker; returns the names written (the planned files, then ``result.json``)."""
        from ..io.writers import write_json

        write_json(self.folder / RESULT_NAME, manifest, overwrite=self.force)
        for name in self.owned - set(self.planned):  # the earlier run's files that this run did not write again
            (self.folder / name).unlink(missing_ok=True)
        (self.folder / PARTIAL_NAME).unlink(missing_ok=True)
        return self.planned + [RESULT_NAME]
