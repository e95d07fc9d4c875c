"""The tracker's state-dict keys and shapes equal the released checkpoint's ``tracker_model.*`` entries."""

from __future__ import annotations

from collections import Counter

import torch

from sam3kit.config import Sam3Config
from sam3kit.model.tracker.tracker import Tracker

from fixtures.hf_keys import collapse_key, released_patterns


def test_tracker_keys_and_shapes_match_release():
    with torch.device("meta"):
        tracker = Tracker(Sam3Config.released().tracker)
    ours = {k: tuple(v.shape) for k, v in tracker.state_dict().items()}
    expected = released_patterns("tracker_model.")
    counts = Counter(collapse_key(k) for k in ours)
    first: dict[str, tuple[int, ...]] = {}
    for k, s in ours.items():
        first.setdefault(collapse_key(k), s)
    assert set(counts) == set(expected), (f"missing {sorted(set(expected) - set(counts))}, "
                                          f"unexpected {sorted(set(counts) - set(expected))}")
    for k, (shape, n) in expected.items():
        assert counts[k] == n, f"{k}: {counts[k]} instances, expected {n}"
        assert first[k] == shape, f"{k}: shape {first[k]}, expected {shape}"
    assert len(ours) == sum(n for _, n in expected.values())


def test_tracker_parameter_count_matches_release():
    """The official tracker holds 11,743,618 values (memory attention, memory encoder, prompt encoder with its one
    Gaussian matrix, mask decoder and the learned embeddings); ours holds the matrix twice, as the Hugging Face
    checkpoint does (the copy for the image-wide position encoding: 2 x 128 more)."""
    with torch.device("meta"):
        tracker = Tracker(Sam3Config.released().tracker)
    assert sum(t.numel() for t in tracker.state_dict().values()) == 11_743_618 + 2 * 128
