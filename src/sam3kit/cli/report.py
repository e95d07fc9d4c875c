"""What ``segment`` shows in the terminal: a status line or a progress bar on stderr, and a table per image on stdout.

The status (``Reporter``) says what is happening and for how long: "loading ./sam3 on cpu (fp32)  3s", then per
image "a.jpg: encoding  41s", "a.jpg: prompt 2/3 'dog'". With one input it is one line redrawn in place; with
several it is the postfix of a tqdm progress bar (count, rate, time left). It is drawn only when stderr is a
terminal and ``--quiet`` is not given, and cleared before anything else is printed; logs, pipes and tests get the
per-image tables and the summary line only.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any, Iterator, Optional, Sequence, TextIO


class Reporter:
    """The status line / progress bar of a command (module docstring).

    Args:
        total: inputs to process (a bar is shown for more than one).
        stream: where it is drawn (default stderr).
        enabled: draw it (default: when ``stream`` is a terminal).
        tick: seconds between redraws of the elapsed time while a stage runs.
        unit: what ``total`` counts, for the bar's rate ("image", "frame": "3.2 frame/s").
    """

    def __init__(self, total: int, stream: Optional[TextIO] = None, enabled: Optional[bool] = None,
                 tick: float = 1.0, unit: str = "image") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.enabled = _isatty(self.stream) if enabled is None else bool(enabled)
        self._stage = ""
        self._since = time.monotonic()
        self._lock = threading.RLock()
        self._bar = None
        self._drawn = False
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        if self.enabled and total > 1:
            self._bar = _tqdm(total, self.stream, unit)
        if self.enabled and tick > 0:
            self._ticker = threading.Thread(target=self._tick, args=(tick,), name="sam3kit-status", daemon=True)
            self._ticker.start()

    def stage(self, text: str) -> None:
        """Show ``text`` as the current stage; its elapsed time counts from now."""
        with self._lock:
            self._stage = text
            self._since = time.monotonic()
            self._draw()

    def advance(self) -> None:
        """One input finished."""
        with self._lock:
            if self._bar is not None:
                self._bar.update(1)
                self._bar.refresh()  # one image takes seconds: always show it

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Clear the line while the caller prints (a table, an error), then draw it again."""
        with self._lock:
            self._clear()
            try:
                yield
            finally:
                self._draw()

    def close(self) -> None:
        """Stop redrawing and clear the line (the bar is removed: the summary line follows)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear()
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            self.enabled = False

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ drawing
    def _text(self) -> str:
        if not self._stage:
            return ""
        return f"{self._stage}  {_duration(time.monotonic() - self._since)}"

    def _draw(self) -> None:
        if not self.enabled:
            return
        text = self._text()
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)
            return
        if not text:
            return
        width = (_columns(self.stream) or 100) - 1
        self.stream.write("\r\033[K" + text[:width])
        self.stream.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._bar is not None:
            self._bar.clear()
        elif self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                if self.enabled and self._stage:
                    self._draw()


def _tqdm(total: int, stream: TextIO, unit: str = "image"):
    """A tqdm bar on ``stream``, or None when tqdm is missing (the status line is then drawn without a bar)."""
    try:
        from tqdm import tqdm
    except ImportError:  # a core dependency; a broken install only loses the bar
        return None
    sized = _columns(stream) > 0  # a terminal that reports no size (some pseudo-terminals): a fixed width
    return tqdm(total=total, file=stream, unit=unit, leave=False, dynamic_ncols=sized,
                ncols=None if sized else 100, nrows=None if sized else 20, mininterval=0.2,
                bar_format="{n_fmt}/{total_fmt} {bar:20} {percentage:3.0f}% [{elapsed}<{remaining}, {rate_fmt}]{postfix}")


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


# ----------------------------------------------------------------------------- the per-image table
def image_table(name: str, width: int, height: int, prompts: Sequence[dict[str, Any]],
                records: Sequence[dict[str, Any]]) -> str:
    """The table printed for one image, rows in instance-id order (the order of the mask files).

    ``prompts`` are the ``result.json`` prompt entries (with "label", "presence" or "object_score"), ``records``
    the instance records (``sam3kit.io.writers``). Concept prompts show "presence" (the probability that the concept
    is in the image) and each instance's "score" (class x presence); interactive prompts show the "object score"
    (the probability that the clicked object is there) and each mask's predicted "iou", ``*`` marking the highest.
    A legend line under the table says what the columns mean.
    """
    kinds = {"interactive" if "object_score" in p else "concept" for p in prompts}
    header = ["id", "prompt"]
    if "concept" in kinds:
        header += ["presence", "score"]
    if "interactive" in kinds:
        header += ["object score", "iou"]
    header += ["x1", "y1", "x2", "y2", "area"]
    lines = [f"{name}  {width}x{height}  {len(records)} mask{'s' if len(records) != 1 else ''}"]
    rows = []
    for r in records:
        p = prompts[r["prompt"]]
        box = r["box"] or [None] * 4
        row = [str(r["id"]), _short(r["label"])]
        if "concept" in kinds:
            row += [_num(p.get("presence")), _num(r.get("score"))]
        if "interactive" in kinds:
            row += [_num(p.get("object_score")),
                    _num(r.get("iou")) + ("*" if r.get("best") else ("" if r.get("iou") is None else " "))]
        rows.append(row + [*(_num(v, 1) for v in box), f"{r['area']:,}"])
    if rows:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        fmt = lambda row: "  " + "  ".join(c.ljust(w) if i == 1 else c.rjust(w)  # noqa: E731
                                           for i, (c, w) in enumerate(zip(row, widths)))
        lines.append(fmt(header))
        lines.extend(fmt(row) for row in rows)
    for k, p in enumerate(prompts):
        if not any(r["prompt"] == k for r in records):
            what = f"presence {_num(p.get('presence'))}" if "presence" in p else \
                f"object score {_num(p.get('object_score'))}"
            lines.append(f"  {_short(p['label'])}: nothing found ({what})")
    if rows:
        legend = []
        if "concept" in kinds:
            legend.append("presence: probability the concept is in the image; score: class x presence")
        if "interactive" in kinds:
            legend.append("object score: probability the clicked object is there; iou: predicted IoU, "
                          "* = highest")
        lines.append("  (" + "; ".join(legend) + ")")
    return "\n".join(lines)


def _num(v: Optional[float], digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _short(s: str, n: int = 24) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."
