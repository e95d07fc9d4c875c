"""Match a checkpoint's tensors to the model's, by name and shape only (no tensor is read).

``match_keys`` says, for every tensor of the model (sam3kit's names), which tensor(s) of the file fill it and
with which fix (``keymap.Fix``), and lists what does not fit: file tensors that are missing, unexpected, or of the
wrong shape, each under its name in the file's own layout and each once (the three q/k/v parts of one fused
official tensor are one tensor of the file). The loader reads the tensors of a complete match; ``sam3kit info``
reports an incomplete one; ``mismatch_error`` turns one into a one-line ``CheckpointError`` with the per-tensor
lines in ``details``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from ..config import Sam3Config
from ..errors import CheckpointError
from . import keymap

DETAIL_LIMIT = 20
"""At most this many lines per kind of problem in ``details`` (then one "... and N more" line)."""

Shape = Sequence[int]


@dataclass
class KeyMatch:
    """The outcome of ``match_keys``.

    plan: our name -> (the file tensor(s) holding it, the fix). Several file tensors only for ``Fix("row")``
        (one per row); a fused official tensor appears in the plans of each of its parts.
    missing / unexpected: names in the file's layout, each once, in model order / file order.
    mismatched: file name -> "tensor 'name' has wrong shape: got [..], expected [..]".
    hint: a sentence that explains the problems as a whole (a detector-only file for a full config), or "".
    """

    layout: str
    plan: dict[str, tuple[tuple[str, ...], Optional[keymap.Fix]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, str] = field(default_factory=dict)
    hint: str = ""

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """"tensors: 1 missing, 2 unexpected, 3 of the wrong shape"; a single problem is said in full."""
        problems = self.problem_lines(limit=None)
        if len(problems) == 1:
            return problems[0]
        parts = [f"{len(items)} {title}" for title, items in (
            ("missing", self.missing), ("unexpected", self.unexpected), ("of the wrong shape", self.mismatched))
            if items]
        return "tensors: " + ", ".join(parts)

    def problem_lines(self, limit: Optional[int] = DETAIL_LIMIT) -> list[str]:
        """One line per problem tensor ("missing: name", "unexpected: name", the wrong-shape sentence), at most
        ``limit`` per kind followed by an "... and N more" line."""
        out: list[str] = []
        for title, items in (("missing", [f"missing: {k}" for k in self.missing]),
                             ("unexpected", [f"unexpected: {k}" for k in self.unexpected]),
                             ("of the wrong shape", list(self.mismatched.values()))):
            shown = items if limit is None else items[:limit]
            out.extend(shown)
            if len(items) > len(shown):
                out.append(f"... and {len(items) - len(shown)} more {title}")
        return out


def match_keys(shapes: Mapping[str, Shape], expected: Mapping[str, Shape], cfg: Sam3Config, layout: str) -> KeyMatch:
    """Match the file's tensors (``shapes``: file name -> shape) to the model's (``expected``: our name -> shape)
    for ``layout`` ("hf", "hf_detector" or "official", ``loader.detect_layout``)."""
    if layout == "official":
        return _match_official(shapes, expected, cfg)
    return _match_hf(shapes, expected, cfg, layout)


def _shape_line(key: str, expected: Shape, got: Shape) -> str:
    return f"tensor {key!r} has wrong shape: got {list(got)}, expected {list(expected)}"


def _canonical_hf_key(key: str) -> str:
    for alias, canonical in keymap.HF_PREFIX_ALIASES.items():
        if key.startswith(alias):
            return canonical + key[len(alias):]
    return key


def _match_hf(shapes: Mapping[str, Shape], expected: Mapping[str, Shape], cfg: Sam3Config, layout: str) -> KeyMatch:
    prefix = "detector_model." if layout == "hf_detector" else ""
    canonical = {_canonical_hf_key(k): k for k in shapes}  # canonical name -> name in the file
    m = KeyMatch(layout)
    claimed: set[str] = set()
    for ours, shape in expected.items():
        fk = keymap.hf_file_key(ours)
        if prefix and fk.startswith(prefix):
            fk = fk[len(prefix):]
        if fk not in canonical:
            m.missing.append(fk)
            continue
        fk = canonical[fk]
        claimed.add(fk)
        if tuple(shapes[fk]) != tuple(shape):
            m.mismatched[fk] = _shape_line(fk, shape, shapes[fk])
            continue
        m.plan[ours] = ((fk,), None)
    m.unexpected = [fk for fk in shapes if fk not in claimed]
    if layout == "hf_detector" and cfg.tracker is not None:
        m.hint = ("this is a detector-only checkpoint (transformers Sam3Model) but the configuration has a tracker: "
                  "load it with a detector-only config")
    return m


def _match_official(shapes: Mapping[str, Shape], expected: Mapping[str, Shape], cfg: Sam3Config) -> KeyMatch:
    rules = keymap.official_rules(cfg)
    m = KeyMatch("official")
    claimed: set[str] = set()
    missing: dict[str, None] = {}  # ordered set: a fused tensor is missing once, not once per q/k/v part
    for ours, shape in expected.items():
        ok, fix = keymap.official_key(rules, ours)
        if fix is not None and fix.kind == "row":
            keys = [ok.format(row=r) for r in range(shape[0])]
            claimed.update(k for k in keys if k in shapes)
            absent = [k for k in keys if k not in shapes]
            if absent:
                missing.update(dict.fromkeys(absent))
                continue
            bad = [k for k in keys if _numel(shapes[k]) != shape[1]]
            if bad:
                m.mismatched.setdefault(bad[0], _shape_line(bad[0], (1, shape[1]), shapes[bad[0]]))
                continue
            m.plan[ours] = (tuple(keys), fix)
            continue
        if ok not in shapes:
            missing[ok] = None
            continue
        claimed.add(ok)
        if not _fits(fix, tuple(shapes[ok]), tuple(shape)):
            m.mismatched.setdefault(ok, _shape_line(ok, official_shape(fix, shape), shapes[ok]))
            continue
        m.plan[ours] = ((ok,), fix)
    m.missing = list(missing)
    m.unexpected = [k for k in shapes
                    if k not in claimed and not any(re.match(p, k) for p in keymap.OFFICIAL_SKIPPED)]
    return m


def _numel(shape: Shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _fits(fix: Optional[keymap.Fix], got: tuple[int, ...], ours: tuple[int, ...]) -> bool:
    """Whether a file tensor of shape ``got`` gives our tensor of shape ``ours`` through ``fix``
    (``keymap.extract``)."""
    if fix is None:
        return got == ours
    if fix.kind == "chunk":
        return len(got) == len(ours) and got[0] == fix.parts * ours[0] and got[1:] == ours[1:]
    if fix.kind == "pos_embed":  # with the cls slot (as released) or without it
        with_cls = len(got) == len(ours) > 1 and got[1] == ours[1] + 1 and got[:1] + got[2:] == ours[:1] + ours[2:]
        return got == ours or with_cls
    if fix.kind == "transpose":
        return got == ours[::-1]
    raise AssertionError(f"unknown tensor fix {fix.kind!r}")  # internal invariant: the rules name every kind


def official_shape(fix: Optional[keymap.Fix], shape: Shape) -> tuple[int, ...]:
    """The shape of the official file tensor that holds our tensor of ``shape``."""
    s = [int(d) for d in shape]
    if fix is None:
        return tuple(s)
    if fix.kind == "chunk":
        s[0] *= fix.parts
    elif fix.kind == "pos_embed":
        s[1] += 1
    elif fix.kind == "transpose":
        s = s[::-1]
    return tuple(s)


LAYOUT_TITLES = {"hf": "Hugging Face layout", "hf_detector": "Hugging Face detector-only layout",
                 "official": "official sam3.pt layout"}


def mismatch_error(match: KeyMatch, where: str, config_origin: str, config_path: Optional[str] = None, *,
                   listed: str = "in the error's details", ending: str = " Nothing was loaded.") -> CheckpointError:
    """The one-line error for an incomplete match, the per-tensor lines in ``details``.

    ``config_origin``: "file" (read from ``config_path``), "assumed" (no config.json: the released architecture)
    or "given" (the caller's ``config=``). ``listed`` says where the tensors are listed, ``ending`` closes the
    message (``sam3kit info`` lists them itself and loads nothing).
    """
    what = f"{where} ({LAYOUT_TITLES[match.layout]})"
    summary = match.summary()
    listed = "" if len(match.problem_lines(limit=None)) == 1 else f" (listed {listed})"
    if match.hint:
        msg = f"{what}: {match.hint}; {summary}{listed}.{ending}"
    elif config_origin == "assumed":
        msg = (f"{what}: no config.json found, so the released SAM 3 architecture was assumed, and the weights do "
               f"not match it: {summary}{listed}. The checkpoint is probably not the released size: put its "
               f"config.json beside the weights.{ending}")
    elif config_origin == "file":
        msg = (f"{what}: the weights do not match {config_path}: {summary}{listed}. Is this the right config.json "
               f"for this checkpoint?{ending}")
    else:
        msg = f"{what}: the weights do not match the given configuration: {summary}{listed}.{ending}"
    return CheckpointError(msg, details=match.problem_lines())
