"""The full released configuration, built on the meta device (free), consumes exactly the released key lists.

Reference lists (tests/data, see its README): keys_hf_Sam3VideoModel.txt (facebook/sam3 model.safetensors, 1797
tensors) and keys_official_sam3pt_layout.txt (sam3.pt, 1465 tensors). They collapse layer indices to ``{i}`` and
record the count and the shape of the first tensor of each pattern, so the check is: same patterns, same counts,
and the recorded shape is one of the shapes we produce for that pattern.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from sam3kit.config import Sam3Config
from sam3kit.model.sam3 import Sam3Model
from sam3kit.weights.writer import hf_state_dict, official_state_dict

from fixtures.hf_keys import HF_KEY_LIST, OFFICIAL_KEY_LIST, collapse_key, read_key_list


def _collapse(state: dict[str, torch.Tensor]) -> dict[str, tuple[set, int]]:
    out: dict[str, list] = defaultdict(lambda: [set(), 0])
    for k, v in state.items():
        pat = collapse_key(k)
        out[pat][0].add(tuple(v.shape))
        out[pat][1] += 1
    return dict(out)


def _compare(ours: dict[str, tuple[set, int]], ref: dict[str, tuple[tuple[int, ...], int]]) -> list[str]:
    problems = [f"missing in ours: {k}" for k in ref if k not in ours]
    problems += [f"not in the release: {k}" for k in ours if k not in ref]
    for k in set(ours) & set(ref):
        shapes, n = ours[k]
        if n != ref[k][1]:
            problems.append(f"{k}: {n} tensors, release has {ref[k][1]}")
        if ref[k][0] not in shapes:
            problems.append(f"{k}: shapes {sorted(shapes)}, release has {ref[k][0]}")
    return problems


@pytest.fixture(scope="module")
def released_state():
    cfg = Sam3Config.released()
    with torch.device("meta"):
        model = Sam3Model(cfg)
    return cfg, model.state_dict()


def test_hf_layout_matches_release(released_state):
    cfg, state = released_state
    hf = hf_state_dict(state, cfg)
    assert len(hf) == 1797
    assert _compare(_collapse(hf), read_key_list(HF_KEY_LIST)) == []


def test_official_layout_matches_release(released_state):
    cfg, state = released_state
    off = official_state_dict(state, cfg)
    ref = read_key_list(OFFICIAL_KEY_LIST)
    assert len(off) == sum(n for _, n in ref.values()) == 1465
    assert _compare(_collapse(off), ref) == []
    # the RoPE tables: 24x24 windows for windowed blocks, the full 72x72 grid for global blocks
    assert off["detector.backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis"].shape == (576, 32)
    assert off["detector.backbone.vision_backbone.trunk.blocks.7.attn.freqs_cis"].shape == (5184, 32)


def test_parameter_count_matches_release(released_state):
    """The official sam3.pt holds 860,055,480 values besides its RoPE tables = ours + the official-only tensors -
    our second copy of the tracker's Gaussian matrix."""
    cfg, state = released_state
    ours = sum(v.numel() for v in state.values())
    off = official_state_dict(state, cfg)
    official_only = sum(v.numel() for k, v in off.items() if "freqs_cis" not in k)
    assert official_only == 860_055_480
    # ours lacks: the cls slot of the pos table (1024) and the detector's unused point projections; ours holds the
    # Gaussian matrix (2, d/2) twice (prompt coordinates and the image-wide encoding), the official layout once
    d = 256
    assert official_only - ours == 1024 + (d * 2 + d) + (d * d + d) + (d * d + d) - 2 * (d // 2)


def test_loader_walk_lists_the_state_dict(released_state):
    """The loader's one-walk list of names and shapes is exactly ``state_dict()``, in the same order."""
    from sam3kit.weights.loader import _state_shapes

    cfg, state = released_state
    with torch.device("meta"):
        model = Sam3Model(cfg)
    walked = _state_shapes(dict(model.named_modules()))
    assert list(walked) == list(state)
    assert all(walked[k] == v.shape for k, v in state.items())
