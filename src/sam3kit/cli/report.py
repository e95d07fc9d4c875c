"""What ``segment`` shows in the terminal: a one-line progress bar on stderr and a table per image on stdout."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, Sequence, TextIO


class Progress:
    """``[ 3/10] ######----  30%  name.jpg  eta 12s`` redrawn in place on stderr; silent unless stderr is a terminal
    (logs and pipes get the per-image lines of stdout instead)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, enabled: Optional[bool] = None) -> None:
        self.total = total
        self.stream = stream
        self.enabled = (total > 1 and _isatty(stream)) if enabled is None else enabled
        self.start = time.monotonic()
        self.done = 0
        self._shown = False

    def show(self, name: str) -> None:
        if not self.enabled:
            return
        frac = self.done / max(1, self.total)
        bar = "#" * int(frac * 20) + "-" * (20 - int(frac * 20))
        eta = ""
        if self.done:
            left = (time.monotonic() - self.start) / self.done * (self.total - self.done)
            eta = f"  eta {_duration(left)}"
        width = len(str(self.total))
        line = f"[{self.done:>{width}}/{self.total}] {bar} {frac:4.0%}  {name}{eta}"
        self.stream.write("\r\033[K" + line[:160])
        self.stream.flush()
        self._shown = True

    def advance(self) -> None:
        self.done += 1

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


def image_table(name: str, width: int, height: int, prompts: Sequence[dict[str, Any]],
                records: Sequence[dict[str, Any]]) -> str:
    """The table printed for one image.

    ``prompts`` are the ``result.json`` prompt entries (with "label", "presence" or "object_score"), ``records``
    the instance records (``sam3kit.io.writers``). Concept rows show the score, interactive rows the predicted IoU
    (``*`` = highest of the three); "presence" is the probability the concept (or clicked object) is there.
    """
    lines = [f"{name}  {width}x{height}  {len(records)} mask{'s' if len(records) != 1 else ''}"]
    header = ["id", "prompt", "presence", "score", "iou", "x1", "y1", "x2", "y2", "area"]
    rows = []
    for r in records:
        p = prompts[r["prompt"]]
        box = r["box"] or [None] * 4
        rows.append([str(r["id"]), _short(r["label"]), _num(_presence(p)), _num(r["score"]),
                     _num(r["iou"]) + ("*" if r.get("best") else ("" if r["iou"] is None else " ")),
                     *(_num(v, 1) for v in box), f"{r['area']:,}"])
    if rows:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        fmt = lambda row: "  " + "  ".join(c.ljust(w) if i == 1 else c.rjust(w)  # noqa: E731
                                           for i, (c, w) in enumerate(zip(row, widths)))
        lines.append(fmt(header))
        lines.extend(fmt(row) for row in rows)
    for k, p in enumerate(prompts):
        if not any(r["prompt"] == k for r in records):
            lines.append(f"  {_short(p['label'])}: nothing found (presence {_num(_presence(p))})")
    return "\n".join(lines)


def _presence(p: dict[str, Any]) -> Optional[float]:
    return p.get("presence", p.get("object_score"))


def _num(v: Optional[float], digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _short(s: str, n: int = 24) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."
