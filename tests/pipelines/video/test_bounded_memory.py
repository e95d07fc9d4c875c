"""Bounded memory: a stream of 400 frames through a tiny model; what the session holds (``memory_bytes``) and the
process's resident memory after frame 400 exceed those after frame 50 by no more than the compact stored results.

The tiny model runs at 224 pixels (a 16 x 16 grid) so that one frame's memory (64 x 16 x 16 bfloat16 maps plus
64 x 64 float32 logits, ~48 kB) and its features (~1.4 MB) are large against the allocator's noise: keeping either
for every frame would add 17 MB or 490 MB over the 350 frames. The resident-memory check allows ``RSS_SLACK`` for
the interpreter, measured after handing the allocator's free pages back (``malloc_trim``; without it the resident
size wanders by a few MB with the allocator's arenas). Measured: +1.3 MiB over 950 frames, about what the stored
results take.
"""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path

import numpy as np
import pytest

from sam3kit.pipelines.video import VideoOptions, VideoPredictor

from video_clips import tiny_video_model

RSS_SLACK = 4 * 2 ** 20
H = W = 64


def _frames(n):
    """A stream: each frame made when it is pulled, none kept."""
    yy, xx = np.mgrid[0:H, 0:W]
    for t in range(n):
        rng = np.random.default_rng(t)
        img = rng.integers(90, 140, (H, W, 3)).astype(np.uint8)
        cx = 16 + 32 * (0.5 + 0.5 * np.sin(t / 15.0))
        img[(xx - cx) ** 2 + (yy - 32) ** 2 <= 100] = (220, 40, 40)
        yield img


def _rss() -> int:
    """Resident bytes after a garbage collection and, with glibc, after returning free heap pages; -1 if unknown."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    status = Path("/proc/self/status")
    if not status.exists():
        return -1
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return -1


@pytest.fixture(scope="module")
def model():
    return tiny_video_model(3, image_size=224, obj_score_bias=20.0)  # present on every frame: a full bank


def _run(model, n, marks, options=VideoOptions()):
    seen = {}
    with VideoPredictor(model, options).start(_frames(n)) as s:
        s.add_prompt(0, points=[[26.0, 32.0]])
        for r in s.propagate(direction="forward"):
            assert r.masks.shape == (1, H, W)
            if r.frame_index + 1 in marks:
                del r
                gc.collect()
                seen[len(seen)] = (s.memory_bytes, s.results_bytes, _rss(), len(s._features))
        assert s.num_frames == n
        bank = s._groups[0].bank
        kept = (len(bank.cond), len(bank.non_cond))
    return seen, kept


def test_memory_flat_over_400_streamed_frames(model):
    seen, (n_cond, n_kept) = _run(model, 400, {50, 400})
    (m50, c50, rss50, f50), (m400, c400, rss400, f400) = seen[0], seen[1]
    grown_results = c400 - c50
    print(f"memory_bytes {m50} -> {m400} (+{m400 - m50}); stored results +{grown_results}; "
          f"RSS {rss50 / 2**20:.1f} -> {rss400 / 2**20:.1f} MiB; bank: {n_cond} prompted + {n_kept} tracked frames")
    assert grown_results > 0
    assert m400 - m50 <= grown_results
    assert f50 == f400 == 1  # only the frame just tracked keeps its features
    assert 15 <= n_kept <= 16 + 15  # the live window (and the frames next to the prompted frame)
    if rss50 > 0:
        assert rss400 - rss50 <= grown_results + RSS_SLACK


def test_unbounded_bank_grows(model):
    """The same run keeping every frame's memory (``bounded_memory=False``, the official predictor's behaviour)
    grows by one frame's memory per frame: the measurement above would see a leak."""
    seen, _ = _run(model, 100, {50, 100}, VideoOptions(bounded_memory=False))
    (m50, c50, _, _), (m100, c100, _, _) = seen[0], seen[1]
    per_frame = 64 * 16 * 16 * 2 + 64 * 64 * 4  # memory maps (bf16) + low-resolution logits (fp32)
    assert (m100 - m50) - (c100 - c50) >= 50 * per_frame
