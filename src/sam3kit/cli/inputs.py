"""Command-line inputs: image paths / folders / globs -> files, and the ``--box`` / ``--point`` / ``--format`` /
probability specs."""

from __future__ import annotations

import argparse
import glob
import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm",
                            ".pgm", ".pbm", ".pnm"})
FORMATS = ("png", "json", "coco")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ImageJob:
    """One image to segment and the folder name of its outputs under ``--out``."""

    path: Path
    name: str


def expand_images(specs: list[str]) -> tuple[list[ImageJob], list[tuple[str, str]]]:
    """Image files for the command-line ``specs``, and the specs that gave none, with why.

    A file is taken as is (whatever its suffix: decoding decides); a folder gives the images directly in it; a
    pattern with ``*``, ``?`` or ``[`` is expanded (``**`` recursive). Folders and patterns keep only files with an
    image suffix (``IMAGE_SUFFIXES``). Order: as given, folders and patterns sorted; duplicates dropped.
    Output names are the file stems; a repeated stem gets ``-2``, ``-3``, ... in that order.
    """
    found: list[Path] = []
    problems: list[tuple[str, str]] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                problems.append((spec, f"no image files in folder {spec} (looked for {_suffix_list()})"))
            found.extend(files)
        elif p.is_file():
            found.append(p)
        elif _GLOB_CHARS.search(spec):
            files = sorted(Path(f) for f in glob.glob(str(p), recursive=True)
                           if Path(f).is_file() and Path(f).suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                problems.append((spec, f"no image file matches {spec}"))
            found.extend(files)
        elif p.exists():
            problems.append((spec, f"{spec} is not a regular file"))
        else:
            problems.append((spec, f"{spec}: no such file or folder"))
    seen: set[Path] = set()
    jobs: list[ImageJob] = []
    names: set[str] = set()
    for f in found:
        key = f.resolve()
        if key in seen:
            continue
        seen.add(key)
        name, n = f.stem or "image", 1
        while name in names:
            n += 1
            name = f"{f.stem}-{n}"
        names.add(name)
        jobs.append(ImageJob(f, name))
    return jobs, problems


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
