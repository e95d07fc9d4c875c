"""Command-line inputs: image paths / folders / globs -> files with their output names, and the ``--box`` /
``--point`` / ``--format`` / probability specs.

Output names (``ImageJob.name``, the folder below ``--out``) are a fixed function of each input and the argument
it came from, never of the other inputs given:

- an image found in a folder argument ``DIR`` keeps its path below ``DIR``, without the suffix:
  ``DIR/sub/a.png`` -> ``sub/a``;
- an image matched by a pattern keeps its path below the pattern's fixed leading folders:
  ``shots/**/*.png`` matching ``shots/day1/a.png`` -> ``day1/a``;
- a file given by itself -> its stem: ``photos/a.png`` -> ``a``.

Two inputs that would share a folder (``x/a.png`` and ``y/a.png`` given as files, or ``a.png`` and ``a.jpg`` in
one folder) are an ``InputError`` naming both, raised before any work. Folders are searched recursively by default;
hidden files and folders (names starting with ``.``) and files without an image suffix are skipped and counted, and
so is anything inside the output or cache folder.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm",
                            ".pgm", ".pbm", ".pnm"})
FORMATS = ("png", "json", "coco")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ImageJob:
    """One image to segment and the folder of its outputs below ``--out``.

    path: the image file, as found.
    name: the output folder below ``--out``, a relative POSIX path (``"a"``, ``"sub/a"``).
    source: the image's path below the argument it came from (``"sub/a.png"``; for a file given by itself its
        name), used as ``file_name`` in the merged COCO file.
    """

    path: Path
    name: str
    source: str = ""

    @property
    def file_name(self) -> str:
        return self.source or self.path.name


@dataclass
class InputSet:
    """What ``expand_images`` found.

    jobs: the images, in order (as given; folders and patterns sorted), duplicates dropped.
    problems: (spec, why) for each argument that gave no image.
    ignored: counts of what folders and patterns held but was not taken: "hidden" (names starting with ``.``),
        "not an image" (no image suffix), "in the output folder", "subfolder" (with ``recursive=False``).
    from_folders: whether a folder or pattern gave images (the merged COCO file is written for those runs).
    """

    jobs: list[ImageJob] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)
    from_folders: bool = False

    def ignored_text(self) -> Optional[str]:
        """One phrase for the summary line, e.g. "ignored in folders: 2 hidden, 1 not an image"; None if nothing
        was ignored."""
        if not self.ignored:
            return None
        return "ignored in folders: " + ", ".join(f"{n} {what}" for what, n in sorted(self.ignored.items()))


def expand_images(specs: list[str], *, recursive: bool = True, exclude: Iterable[Optional[Path]] = (),
                  reserved: Iterable[str] = ()) -> InputSet:
    """Image files for the command-line ``specs`` with their output names (module docstring), and the specs that
    gave none, with why.

    A file is taken as is (whatever its suffix: decoding decides); a folder gives the images in it (and in its
    subfolders with ``recursive``); a pattern with ``*``, ``?`` or ``[`` is expanded (``**`` recursive). Folders and
    patterns keep only files with an image suffix (``IMAGE_SUFFIXES``) and skip hidden names. ``exclude``: folders
    (the output and cache folders) whose contents are never taken when met below a folder or pattern argument.
    ``reserved``: output names no image may take (files the command writes at the top of ``--out``).

    Raises ``InputError`` when two images would get the same output folder (or a reserved one), naming both.
    """
    from ..errors import InputError

    excluded = {Path(e).expanduser().resolve() for e in exclude if e is not None}
    res = InputSet()
    found: list[tuple[Path, PurePosixPath]] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            files = _walk(p, recursive, excluded, res.ignored)
            if not files:
                res.problems.append((spec, f"no image files in folder {spec} (looked for {_suffix_list()}"
                                           f"{'' if recursive else ', not in subfolders'})"))
            res.from_folders |= bool(files)
            found.extend((f, PurePosixPath(*f.relative_to(p).parts)) for f in files)
        elif p.is_file():
            found.append((p, PurePosixPath(p.name)))
        elif _GLOB_CHARS.search(spec):
            files = _glob(p, excluded, res.ignored)
            if not files:
                res.problems.append((spec, f"no image file matches {spec}"))
            res.from_folders |= bool(files)
            found.extend(files)
        elif p.exists():
            res.problems.append((spec, f"{spec} is not a regular file"))
        else:
            res.problems.append((spec, f"{spec}: no such file or folder"))
    seen: set[Path] = set()
    taken = {os.path.normcase(r) for r in reserved}
    owner: dict[str, Path] = {}
    for f, rel in found:
        key = f.resolve()
        if key in seen:
            continue
        seen.add(key)
        name = output_name(rel)
        folded = os.path.normcase(name)
        if folded in taken:
            raise InputError(f"{f} would write to the output folder {name!r}, a name the command writes itself; "
                             "rename the image or give its folder instead")
        if folded in owner:
            raise InputError(f"{owner[folded]} and {f} would both write to the output folder {name!r}: run them "
                             "with different --out folders, or give a folder above both (the paths below a folder "
                             "argument are kept)")
        owner[folded] = f
        res.jobs.append(ImageJob(f, name, str(rel)))
    return res


def output_name(rel: PurePosixPath) -> str:
    """The output folder of an image at ``rel`` below its argument: the same path without the file's suffix,
    leading dots dropped from every part (``sub/a.png`` -> ``sub/a``; ``.x.png`` -> ``x``)."""
    parts = [s.lstrip(".") or "image" for s in rel.parts[:-1]]
    stem = PurePosixPath(rel.name).stem if rel.name else "image"
    parts.append(stem.lstrip(".") or "image")
    return "/".join(parts)


def _walk(folder: Path, recursive: bool, excluded: set[Path], ignored: Counter) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder):  # symbolic links to folders are not followed
        r = Path(root)
        keep = []
        for d in sorted(dirs):
            if d.startswith("."):
                ignored["hidden"] += 1
            elif (r / d).resolve() in excluded:
                ignored["in the output/cache folder"] += 1
            elif not recursive:
                ignored["subfolders (--no-recursive)"] += 1
            else:
                keep.append(d)
        dirs[:] = keep
        for name in files:
            f = r / name
            if name.startswith("."):
                ignored["hidden"] += 1
            elif not f.is_file():
                continue
            elif f.suffix.lower() not in IMAGE_SUFFIXES:
                ignored["not an image"] += 1
            else:
                out.append(f)
    return sorted(out, key=lambda f: f.relative_to(folder).parts)


def _glob(pattern: Path, excluded: set[Path], ignored: Counter) -> list[tuple[Path, PurePosixPath]]:
    """Files matching ``pattern`` (``**`` recursive, hidden names only when the pattern names them), each with its
    path below the pattern's fixed leading folders."""
    fixed = []
    for part in pattern.parts:
        if _GLOB_CHARS.search(part):
            break
        fixed.append(part)
    base = Path(*fixed) if fixed else Path(".")
    base_r = base.resolve()
    skip = {e for e in excluded if e != base_r and base_r not in e.parents}  # the base itself inside: the user's
    out = []
    for s in sorted(glob.glob(str(pattern), recursive=True)):
        f = Path(s)
        if not f.is_file():
            continue
        fr = f.resolve()
        if any(e in fr.parents for e in skip):
            ignored["in the output/cache folder"] += 1
        elif f.suffix.lower() not in IMAGE_SUFFIXES:
            ignored["not an image"] += 1
        else:
            rel = f.relative_to(base) if fixed else f
            out.append((f, PurePosixPath(*rel.parts)))
    return out


def _suffix_list() -> str:
    return ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))


def _numbers(text: str, what: str, sizes: tuple[int, ...], example: str) -> list[float]:
    parts = [s for s in re.split(r"[,\s]+", text.strip()) if s]
    if len(parts) not in sizes:
        raise argparse.ArgumentTypeError(f"{what} {text!r} must be {example}")
    try:
        values = [float(s) for s in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} must be numbers: {example}") from None
    if not all(v == v and abs(v) != float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"{what} {text!r} must be finite numbers")
    return values


def _label(v: float, what: str, text: str) -> int:
    if v not in (0.0, 1.0):
        raise argparse.ArgumentTypeError(f"the label of {what} {text!r} must be 1 (positive) or 0 (negative)")
    return int(v)


def parse_box(text: str) -> tuple[float, float, float, float, int]:
    """``x1,y1,x2,y2[,label]`` (pixels; label 1 positive by default, 0 negative) -> (x1, y1, x2, y2, label)."""
    v = _numbers(text, "box", (4, 5), "x1,y1,x2,y2 or x1,y1,x2,y2,label in pixels (e.g. 10,20,200,180)")
    label = _label(v[4], "box", text) if len(v) == 5 else 1
    if v[2] <= v[0] or v[3] <= v[1]:
        raise argparse.ArgumentTypeError(f"box {text!r} must have x1 < x2 and y1 < y2 (top-left, then bottom-right)")
    return v[0], v[1], v[2], v[3], label


def parse_point(text: str) -> tuple[float, float, int]:
    """``x,y[,label]`` (pixels; label 1 foreground by default, 0 background) -> (x, y, label)."""
    v = _numbers(text, "point", (2, 3), "x,y or x,y,label in pixels (e.g. 320,240 or 320,240,0)")
    label = _label(v[2], "point", text) if len(v) == 3 else 1
    return v[0], v[1], label


def parse_formats(text: str) -> tuple[str, ...]:
    """``png``, ``json``, ``coco``, ``all`` or a comma list of them -> sorted tuple of formats."""
    out: set[str] = set()
    for part in (s.strip().lower() for s in text.split(",")):
        if part == "all":
            out.update(FORMATS)
        elif part in FORMATS:
            out.add(part)
        else:
            raise argparse.ArgumentTypeError(f"unknown format {part!r}: use png, json, coco, all, or a comma list")
    if not out:
        raise argparse.ArgumentTypeError("give at least one format: png, json, coco or all")
    return tuple(sorted(out))


def parse_probability(text: str) -> float:
    """A number in [0, 1] (a threshold on scores or mask probabilities)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in [0, 1]") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 1]")
    return v


def parse_threads(text: str) -> int:
    """A thread count: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of threads") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1 thread")
    return v
