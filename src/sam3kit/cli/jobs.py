"""A command that processes many inputs, each into its own folder ``OUT/<name>/``: its flags, the plan (which
inputs are done already), the run over the others, and the summary line and exit code.

One input failing does not stop the others: its error is printed on one line and counted. The exit code is 1 if
any input failed on an unexpected error, else 2 if any failed on a user mistake (missing or corrupt file, a folder
of another run), else 0.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .inputs import ImageJob, expand_images


def add_out_argument(group: Any) -> None:
    """``-o/--out`` on ``group`` (a parser or argument group): the folder that receives one sub-folder per input."""
    group.add_argument("-o", "--out", default="sam3kit_out", metavar="DIR", help="output folder")


def add_rerun_arguments(group: Any, kind: str = "image") -> None:
    """``--force`` and ``-q/--quiet`` on ``group``; ``kind`` names the inputs in their help."""
    group.add_argument("--force", action="store_true", help=f"redo {kind}s whose outputs exist and overwrite them")
    group.add_argument("-q", "--quiet", action="store_true",
                       help=f"no per-{kind} table, only errors and the summary")


@dataclass(frozen=True)
class PlannedJob:
    """One input to process: its file, its options record (``manifest.job_record`` + the command's options) and
    its output folder."""

    job: ImageJob
    options: dict
    folder: Path


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


def collect_inputs(specs: list[str], out: str) -> tuple[list[ImageJob], Tally]:
    """The input files of ``specs`` (``expand_images``) and a fresh tally; the specs that gave no file are printed
    and counted as failed. Raises ``InputError`` when no spec gave a file, ``OutputError`` when ``out`` is a file."""
    from ..errors import InputError, OutputError

    started = time.monotonic()
    jobs, problems = expand_images(specs)
    if not jobs:
        raise InputError("; ".join(msg for _, msg in problems) or "no images given")
    out_root = Path(out).expanduser()
    if out_root.exists() and not out_root.is_dir():
        raise OutputError(f"--out {out_root} is a file, not a folder")
    tally = Tally(out_root, len(jobs) + len(problems), started, user_failed=[spec for spec, _ in problems])
    for _, msg in problems:
        sys.stderr.write(f"sam3kit: error: {msg}\n")
    return jobs, tally


def plan_jobs(jobs: list[ImageJob], options_for: Callable[[ImageJob], dict], tally: Tally, *, force: bool,
              quiet: bool, kind: str = "image") -> list[PlannedJob]:
    """The jobs to run: without ``force``, a job whose folder holds a finished run with equal options is skipped
    (counted, and said unless ``quiet``), and one whose folder holds another run's outputs fails (a user mistake).

    ``options_for(job)`` gives the job's options record; an ``OSError`` from it (unreadable input) fails the job.
    """
    from .manifest import is_complete, read_manifest

    todo = []
    for job in jobs:
        try:
            opts = options_for(job)
        except OSError as e:
            sys.stderr.write(f"sam3kit: error: {job.path}: {e.strerror or e}\n")
            tally.user_failed.append(str(job.path))
            continue
        folder = tally.out_root / job.name
        if not force and is_complete(folder, opts):
            tally.skipped += 1
            if not quiet:
                print(f"{job.path}: done already in {folder} (--force to redo)")
            continue
        if not force and read_manifest(folder) is not None:
            sys.stderr.write(
                f"sam3kit: error: {job.path}: {folder} holds outputs of an earlier run that does not match this one "
                f"(other prompts, options, model or {kind}, or files missing); pass --force to redo it, or choose "
                "another --out\n")
            tally.user_failed.append(str(job.path))
            continue
        todo.append(PlannedJob(job, opts, folder))
    return todo


def run_jobs(planned: list[PlannedJob], work: Callable[[PlannedJob], tuple[int, Optional[str]]], tally: Tally, *,
             debug: bool) -> None:
    """Run ``work`` on every planned job with a progress line; ``work`` returns how many outputs it wrote and the
    text to print for the job (None: nothing). An exception fails that job only: printed, prefixed with the input
    path unless the message names it, and counted as a user mistake or a bug (``report_error``)."""
    from .exit_codes import USER_MISTAKE, report_error
    from .report import Progress

    progress = Progress(len(planned))
    for p in planned:
        progress.show(p.job.path.name)
        try:
            n, text = work(p)
            tally.outputs += n
            tally.done += 1
            progress.clear()
            if text is not None:
                print(text, flush=True)
        except Exception as e:  # one input failing must not stop the others
            progress.clear()
            prefix = "" if str(p.job.path) in str(e) else f"{p.job.path}: "
            code = report_error(e, debug, prefix=prefix)
            (tally.user_failed if code == USER_MISTAKE else tally.bug_failed).append(str(p.job.path))
        progress.advance()
    progress.clear()


def finish(tally: Tally, *, kind: str = "image", unit: str = "mask") -> int:
    """Print the summary line (stdout) and the failed inputs (stderr); return the exit code."""
    from .exit_codes import BUG, OK, USER_MISTAKE

    failed = len(tally.user_failed) + len(tally.bug_failed)
    parts = [f"{tally.done} done"]
    parts += [f"{tally.skipped} skipped (complete)"] if tally.skipped else []
    parts += [f"{failed} failed"] if failed else []
    elapsed = time.monotonic() - tally.started
    print(f"sam3kit: {tally.total} {_plural(kind, tally.total)}: {', '.join(parts)}; {tally.outputs} "
          f"{_plural(unit, tally.outputs)} -> {tally.out_root} ({elapsed:.1f} s)", flush=True)
    if failed:
        sys.stderr.write("failed: " + ", ".join(tally.user_failed + tally.bug_failed) + "\n")
    return BUG if tally.bug_failed else (USER_MISTAKE if tally.user_failed else OK)


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"
