"""A command that processes many inputs, each into its own folder ``OUT/<name>/``: its flags, the inputs and where
their outputs go (checked before any work), the plan (which inputs are done already), the run over the others, and
the summary line and exit code.

The order of work: inputs are collected and the output folders checked (creatable, writable, not files), then
planned (finished jobs skipped on content: ``manifest.compare``); only then does the command load its model, settle
the jobs whose earlier run used the same weights under another path (``settle_model``) and run the rest.

One input failing does not stop the others: its error is printed on one line and counted. The exit code is 1 if
any input failed on an unexpected error, else 2 if any failed on a user mistake (missing or corrupt file, a folder
of another run), else 0. ``--force`` redoes finished jobs but never takes over a folder holding another input's
results.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from .inputs import ImageJob, InputSet, expand_images


def add_out_argument(group: Any) -> None:
    """``-o/--out`` on ``group`` (a parser or argument group): the folder that receives one sub-folder per input."""
    group.add_argument("-o", "--out", default="sam3kit_out", metavar="DIR", help="output folder")


def add_rerun_arguments(group: Any, kind: str = "image") -> None:
    """``--force`` and ``-q/--quiet`` on ``group``; ``kind`` names the inputs in their help."""
    group.add_argument("--force", action="store_true",
                       help=f"redo {kind}s whose outputs exist and overwrite them (never another {kind}'s)")
    group.add_argument("-q", "--quiet", action="store_true",
                       help=f"no per-{kind} table and no progress, only errors and the summary")


def add_recursive_argument(group: Any) -> None:
    """``--recursive / --no-recursive``: whether folder arguments are searched below their top level."""
    import argparse

    group.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                       help="search folder arguments in their subfolders too (outputs keep the paths below the "
                            "folder)")


@dataclass
class PlannedJob:
    """One input to process: its file, its options record (``manifest.job_record`` + the command's options) and
    its output folder. ``pending``: the folder holds a finished run with the same options whose model can only be
    compared once the model is loaded (its fingerprint could not be read before): ``earlier_model`` is the
    fingerprint that run recorded, compared by ``settle_model``."""

    job: ImageJob
    options: dict
    folder: Path
    earlier_model: Optional[str] = None
    pending: bool = False  # only the model is left to compare


@dataclass
class Tally:
    """What a command's run did, for its summary line and exit code."""

    out_root: Path
    total: int  # inputs given: files found plus specs that gave none
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    skipped: int = 0
    outputs: int = 0  # what the jobs produced (masks, ...), summed
    user_failed: list[str] = field(default_factory=list)
    bug_failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # phrases appended to the summary line
    finished: list[PlannedJob] = field(default_factory=list)  # done now or skipped as complete


def collect_inputs(specs: list[str], out: str, *, recursive: bool = True, exclude: Iterable[Optional[Path]] = (),
                   reserved: Iterable[str] = ()) -> tuple[InputSet, Tally]:
    """The input files of ``specs`` (``expand_images``) and a fresh tally; the specs that gave no file are printed
    and counted as failed, what folders held but was skipped goes into the summary. The output folder is checked
    here, before any work (``check_folder``); nothing is left behind.

    Raises ``InputError`` when no spec gave a file (or two inputs would share an output folder), ``OutputError``
    when ``out`` is a file or cannot be created or written.
    """
    from ..errors import InputError

    started = time.monotonic()
    out_root = Path(out).expanduser()
    found = expand_images(specs, recursive=recursive, exclude=[out_root, *exclude], reserved=reserved)
    if not found.jobs:
        raise InputError("; ".join(msg for _, msg in found.problems) or "no images given")
    check_folder(out_root, "--out")
    tally = Tally(out_root, len(found.jobs) + len(found.problems), started,
                  user_failed=[spec for spec, _ in found.problems])
    if found.ignored_text():
        tally.notes.append(found.ignored_text())
    for _, msg in found.problems:
        sys.stderr.write(f"sam3kit: error: {msg}\n")
    return found, tally


def check_folder(folder: Path, what: str) -> None:
    """Raise ``OutputError`` unless ``folder`` is a folder that can be written, or can be created as one. It is
    tried for real (a temporary file is made and removed, and folders created for the test are removed again), so
    permissions, read-only mounts and full disks are all found before any work."""
    from ..errors import OutputError

    folder = Path(folder)
    missing, p = [], folder
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        if p == folder:
            raise OutputError(f"{what} {folder} is a file, not a folder")
        raise OutputError(f"{what} {folder} cannot be created: {p} is a file, not a folder")
    created: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        fd, tmp = tempfile.mkstemp(prefix=".sam3kit-probe-", dir=str(folder))
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputError(f"{what} {folder} cannot be written: {e.strerror or e}") from None
    finally:
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass


def _folder_problem(out_root: Path, folder: Path) -> Optional[str]:
    """Why a job's folder cannot hold outputs (a file in its place or above it, a folder without write
    permission), or None. Nothing is written: the folder of a finished job stays untouched."""
    p = folder
    while p != out_root and out_root in p.parents:
        if p.exists() and not p.is_dir():
            return f"{p} is a file, not a folder; remove it or choose another --out"
        p = p.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} cannot be written (no permission, or a read-only file system)"
    return None


def plan_jobs(jobs: list[ImageJob], options_for: Callable[[ImageJob], dict], tally: Tally, *, force: bool,
              quiet: bool, kind: str = "image") -> list[PlannedJob]:
    """The jobs to run, each job's folder checked first.

    A folder holding another input's results (by path and content; a finished run or an interrupted one) fails its
    job, with or without ``force``. Without ``force``, a job whose folder holds a finished run that matches
    (``manifest.compare``) is skipped (counted, and said unless ``quiet``); one whose earlier run matches except for
    the model's files is planned as ``pending`` (``settle_model`` decides once the model is loaded); any other
    earlier run fails the job, saying what differs. ``options_for(job)`` gives the job's options record; an
    ``OSError`` from it (unreadable input) fails the job.
    """
    from .manifest import DIFFERS, SAME, UNKNOWN, compare, missing_files, read_manifest, read_partial

    todo = []
    for job in jobs:
        try:
            opts = options_for(job)
        except OSError as e:
            _fail(tally, job, f"{job.path}: {e.strerror or e}")
            continue
        folder = tally.out_root / job.name
        problem = _folder_problem(tally.out_root, folder)
        if problem is not None:
            _fail(tally, job, f"{job.path}: {problem}")
            continue
        m = read_manifest(folder)
        owner = _owner(m.get("options") if m else None, kind) or _owner(read_partial(folder), "input")
        if owner is not None and not _same_input(owner, opts.get(kind)):
            _fail(tally, job, f"{job.path}: {folder} holds the results of another {kind} ({owner.get('path')}); "
                              "choose another --out (--force never replaces another input's results)")
            continue
        if force or m is None:
            todo.append(PlannedJob(job, opts, folder))
            continue
        diffs, model = compare(m.get("options"), opts, kind)
        if model == DIFFERS:
            diffs.insert(0, "the model differs")
        missing = missing_files(folder, m)
        if missing is None:
            diffs.append("its file list is unreadable")
        elif missing:
            diffs.append("files are missing: " + ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""))
        if not diffs and model == SAME:
            _skip(tally, PlannedJob(job, opts, folder), quiet)
        elif not diffs and model == UNKNOWN:
            earlier = (m.get("options") or {}).get("model") or {}
            todo.append(PlannedJob(job, opts, folder, earlier_model=earlier.get("fingerprint"), pending=True))
        else:
            what = "; ".join(diffs[:3] + ([f"{len(diffs) - 3} more"] if len(diffs) > 3 else []))
            _fail(tally, job, f"{job.path}: {folder} holds outputs of an earlier run that does not match this one "
                              f"({what}); pass --force to redo it, or choose another --out")
    return todo


def settle_model(planned: list[PlannedJob], fingerprint: str, tally: Tally, *, quiet: bool) -> list[PlannedJob]:
    """Record the loaded model's ``fingerprint`` in the jobs' options that have none yet, and decide the
    ``pending`` jobs: skipped when their earlier run recorded the same fingerprint, failed ("the model differs")
    otherwise. Returns the jobs to run."""
    todo = []
    for p in planned:
        model = p.options.setdefault("model", {})
        if not model.get("fingerprint"):  # a Hub id: known now (a local checkpoint's was read before loading)
            model["fingerprint"] = fingerprint
        if not p.pending:
            todo.append(p)
        elif p.earlier_model == fingerprint:
            _skip(tally, p, quiet)
        else:
            _fail(tally, p.job, f"{p.job.path}: {p.folder} holds outputs of an earlier run that does not match this "
                                "one (the model differs); pass --force to redo it, or choose another --out")
    return todo


def _owner(record: Optional[dict], key: str) -> Optional[dict]:
    v = record.get(key) if isinstance(record, dict) else None
    return v if isinstance(v, dict) and ("path" in v or "sha256" in v) else None


def _same_input(a: dict, b: Any) -> bool:
    """Two input identities (path, sha256) name the same input: the same path, or the same bytes."""
    if not isinstance(b, dict):
        return True
    if a.get("path") is not None and a.get("path") == b.get("path"):
        return True
    return a.get("sha256") is not None and a.get("sha256") == b.get("sha256")


def _skip(tally: Tally, p: PlannedJob, quiet: bool) -> None:
    tally.skipped += 1
    tally.finished.append(p)
    if not quiet:
        print(f"{p.job.path}: done already in {p.folder} (--force to redo)")


def _fail(tally: Tally, job: ImageJob, message: str) -> None:
    sys.stderr.write(f"sam3kit: error: {message}\n")
    tally.user_failed.append(str(job.path))


def run_jobs(planned: list[PlannedJob], work: Callable[[PlannedJob], tuple[int, Optional[str]]], tally: Tally, *,
             debug: bool, verbose: bool = False, reporter: Any = None) -> None:
    """Run ``work`` on every planned job; ``work`` returns how many outputs it wrote and the text to print for the
    job (None: nothing). An exception fails that job only: printed on one line, prefixed with the input path unless
    the message names it, and counted as a user mistake or a bug (``report_error``). ``reporter``
    (``report.Reporter``) is advanced per job and cleared around what is printed."""
    from .exit_codes import USER_MISTAKE, report_error
    from .report import Reporter

    rep = reporter if reporter is not None else Reporter(len(planned), enabled=False)
    for p in planned:
        rep.stage(f"{p.job.path.name}: starting")
        try:
            n, text = work(p)
            tally.outputs += n
            tally.done += 1
            tally.finished.append(p)
            if text is not None:
                with rep.paused():
                    print(text, flush=True)
        except Exception as e:  # one input failing must not stop the others
            prefix = "" if str(p.job.path) in str(e) else f"{p.job.path}: "
            with rep.paused():
                code = report_error(e, debug, prefix=prefix, verbose=verbose)
            (tally.user_failed if code == USER_MISTAKE else tally.bug_failed).append(str(p.job.path))
        rep.advance()


def finish(tally: Tally, *, kind: str = "image", unit: str = "mask") -> int:
    """Print the summary line (stdout) and, when several inputs failed, their list (stderr); return the exit
    code."""
    from .exit_codes import BUG, OK, USER_MISTAKE

    failed = len(tally.user_failed) + len(tally.bug_failed)
    parts = [f"{tally.done} done"]
    parts += [f"{tally.skipped} skipped (complete)"] if tally.skipped else []
    parts += [f"{failed} failed"] if failed else []
    elapsed = time.monotonic() - tally.started
    notes = "".join(f"; {n}" for n in tally.notes)
    print(f"sam3kit: {tally.total} {_plural(kind, tally.total)}: {', '.join(parts)}; {tally.outputs} "
          f"{_plural(unit, tally.outputs)} -> {tally.out_root} ({elapsed:.1f} s){notes}", flush=True)
    if failed > 1:  # one failure was said on its own line already
        sys.stderr.write("failed: " + ", ".join(tally.user_failed + tally.bug_failed) + "\n")
    return BUG if tally.bug_failed else (USER_MISTAKE if tally.user_failed else OK)


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"
