"""The frames of a propagation, pass by pass (pure functions of the start, the direction, the frame budget and the
video's length; None for a stream, whose passes end where the stream does)."""

from __future__ import annotations

from typing import Iterator, Optional


def tracker_passes(s: int, direction: str, max_frames: Optional[int],
                   num_frames: Optional[int]) -> list[tuple[bool, Iterator[int]]]:
    """(reverse, frames) of each pass of a tracker propagation (official ``Sam3TrackerPredictor``): forward
    ``s .. s + max_frames``, backward ``s .. s - max_frames`` (the start frame again; frame 0 alone from 0)."""
    n = num_frames
    mx = max_frames if max_frames is not None else n
    passes = []
    if direction in ("both", "forward"):
        end = (None if mx is None else s + mx) if n is None else min(s + mx, n - 1)
        passes.append((False, iter(range(s, end + 1)) if end is not None else count_from(s)))
    if direction in ("both", "backward"):
        end = max(s - (mx if mx is not None else s), 0)
        passes.append((True, iter(range(s, end - 1, -1)) if s > 0 else iter([0])))
    return passes


def concept_passes(s: int, direction: str, max_frames: Optional[int],
                   num_frames: Optional[int]) -> list[tuple[bool, Iterator[int], Optional[int]]]:
    """(reverse, frames, last frame or None for an endless stream) of each pass of a detect-and-track propagation
    (official ``Sam3VideoInference``): forward ``s .. s + max_frames``, backward from ``s - 1`` (the start frame is
    computed once) to ``s - max_frames``."""
    n = num_frames
    mx = max_frames if max_frames is not None else n
    passes = []
    if direction in ("both", "forward"):
        if n is None and mx is None:
            passes.append((False, count_from(s), None))
        else:
            end = s + mx if n is None else min(s + mx, n - 1)
            passes.append((False, iter(range(s, end + 1)), end))
    if direction in ("both", "backward"):
        end = max(s - (mx if mx is not None else s), 0)
        passes.append((True, iter(range(s - 1, end - 1, -1)), end))
    return passes


def count_from(start: int) -> Iterator[int]:
    """start, start + 1, ... (the frames of a stream of unknown length)."""
    i = start
    while True:
        yield i
        i += 1
