"""Regenerates the key lists of this folder (see README.md). Not run by the tests.

    python tests/data/make_key_lists.py hf        # with the `test` extra (transformers 5.23) installed
    python tests/data/make_key_lists.py official  # where the official package (PyPI sam3==0.1.4) builds
                                                  # (on a CPU-only machine: with the shims described in tools/oracle/)

``hf``: the state dict of transformers' ``Sam3VideoModel(Sam3VideoConfig())``, built on the meta device; its default
configuration is that of facebook/sam3, and its names and shapes are those of the released ``model.safetensors``.
``official``: the state dict of the official ``build_sam3_video_model`` (random weights, no download), the module
tree the released ``sam3.pt`` is saved from.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def collapse(state) -> str:
    """One line per key pattern (layer indices as ``{i}``): pattern, shape of the first tensor, count."""
    rows: dict[str, list] = {}
    for k, v in state.items():
        pat = re.sub(r"\.\d+(?=\.|$)", ".{i}", k)
        rows.setdefault(pat, [tuple(v.shape), 0])[1] += 1
    return "".join(f"{k}\t{shape}\t(x{n})\n" for k, (shape, n) in rows.items())


def hf_state():
    import torch
    from transformers import Sam3VideoConfig, Sam3VideoModel

    with torch.device("meta"):
        return Sam3VideoModel(Sam3VideoConfig()).state_dict()


def official_state():
    from sam3.model_builder import build_sam3_video_model

    bpe = HERE.parents[1] / "src" / "sam3kit" / "assets" / "bpe_simple_vocab_16e6.txt.gz"  # not in the PyPI package
    return build_sam3_video_model(bpe_path=str(bpe), load_from_HF=False, checkpoint_path=None,
                                  device="cpu").state_dict()


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which == "hf":
        (HERE / "keys_hf_Sam3VideoModel.txt").write_text(collapse(hf_state()))
    elif which == "official":
        (HERE / "keys_official_sam3pt_layout.txt").write_text(collapse(official_state()))
    else:
        sys.exit("usage: make_key_lists.py hf|official")


if __name__ == "__main__":
    main()
