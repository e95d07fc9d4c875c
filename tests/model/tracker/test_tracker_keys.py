"""The tracker's state-dict keys and shapes equal the released checkpoint's ``tracker_model.*`` entries."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.model.tracker.tracker import Tracker

KEYS_FILE = Path("/work/shared/oracle/keys_hf_Sam3VideoModel.txt")
DUPLICATE = "tracker_model.shared_image_embedding.positional_embedding"  # loader-checked copy, not ours


def _collapse(key: str) -> str:
    return re.sub(r"\.\d+(?=\.|$)", ".{i}", key)


def _released_tracker_keys() -> dict[str, tuple[tuple[int, ...], int]]:
    """Collapsed key -> (shape of the first instance, number of instances)."""
    out = {}
    for line in KEYS_FILE.read_text().splitlines():
        name, shape, count = line.split("\t")
        if name.startswith("tracker_model."):
            out[name] = (tuple(int(s) for s in re.findall(r"\d+", shape)), int(re.search(r"\d+", count).group()))
    return out


@pytest.mark.skipif(not KEYS_FILE.exists(), reason="shared key list not available")
def test_tracker_keys_and_shapes_match_release():
    with torch.device("meta"):
        tracker = Tracker(Sam3Config.released().tracker)
    ours = {"tracker_model." + k: tuple(v.shape) for k, v in tracker.state_dict().items()}
    expected = _released_tracker_keys()
    assert expected.pop(DUPLICATE)[0] == ours["tracker_model.prompt_encoder.shared_embedding.positional_embedding"]
    counts = Counter(_collapse(k) for k in ours)
    first: dict[str, tuple[int, ...]] = {}
    for k, s in ours.items():
        first.setdefault(_collapse(k), s)
    assert set(counts) == set(expected), (f"missing {sorted(set(expected) - set(counts))}, "
                                          f"unexpected {sorted(set(counts) - set(expected))}")
    for k, (shape, n) in expected.items():
        assert counts[k] == n, f"{k}: {counts[k]} instances, expected {n}"
        assert first[k] == shape, f"{k}: shape {first[k]}, expected {shape}"
    assert len(ours) == sum(n for _, n in expected.values())


def test_tracker_parameter_count_matches_release():
    """Design doc section 10.3: memory attention + memory encoder + prompt encoder (incl. the Gaussian buffer) +
    mask decoder + misc = 11,743,618 values."""
    with torch.device("meta"):
        tracker = Tracker(Sam3Config.released().tracker)
    assert sum(t.numel() for t in tracker.state_dict().values()) == 11_743_618
