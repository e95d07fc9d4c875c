"""``sam3kit info``: a checkpoint described from its headers."""

from __future__ import annotations

import json

import numpy as np
from safetensors import safe_open

from sam3kit.cli.info import HF_COMPONENTS, describe, format_table


def _file_params(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: int(np.prod(f.get_slice(k).get_shape())) for k in f.keys()}


def test_info(cli, tiny_checkpoint):
    r = cli("info", tiny_checkpoint, "--json")
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    params = _file_params(tiny_checkpoint / "model.safetensors")
    assert facts["layout"] == "hf" and facts["format"] == "safetensors" and facts["tensors"] == len(params)
    assert facts["params"] == sum(params.values()) == sum(c["params"] for c in facts["components"].values())
    assert list(facts["components"]) == list(dict.fromkeys(c for _, c in HF_COMPONENTS))  # all named, none "other"
    assert facts["dtypes"] == {"float32": {"tensors": len(params), "bytes": 4 * sum(params.values())}}
    assert facts["model"]["tracker"] and not facts["model"]["released_architecture"]
    assert facts["tokenizer_files"] == ["merges.txt", "vocab.json"]
    text = format_table(describe(str(tiny_checkpoint)))
    assert "Hugging Face (facebook/sam3" in text and "custom architecture (detector + tracker)" in text
    assert f"{sum(params.values()):,}" in text.splitlines()[-1] and text.splitlines()[-1].startswith("total")


def test_detector_only_checkpoint(tmp_path, capsys):
    from conftest import randomize_
    from sam3kit.config import Sam3Config
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.weights.writer import save_hf

    cfg = Sam3Config.tiny(with_tracker=False)
    save_hf(randomize_(Sam3Model(cfg)).state_dict(), cfg, tmp_path)
    facts = describe(str(tmp_path))
    assert facts["layout"] == "hf_detector" and not facts["model"]["tracker"]
    assert not any(c.startswith("tracker") for c in facts["components"]) and "other" not in facts["components"]
    assert "detector only" in format_table(facts) and "none (concept prompts need" in format_table(facts)
    # the official layout holds detector and tracker: no such conversion
    from sam3kit.cli import main

    assert main(["convert", str(tmp_path), str(tmp_path / "o.pt")]) == 2
    assert "detector-only" in capsys.readouterr().err and not (tmp_path / "o.pt").exists()
