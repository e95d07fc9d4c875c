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
    assert facts["tokenizer"] == {"source": "checkpoint", "files": ["vocab.json", "merges.txt"]}
    assert facts["check"]["complete"] and facts["config_origin"] == "file"
    text = format_table(describe(str(tiny_checkpoint)))
    assert "tokenizer   the checkpoint's own (vocab.json + merges.txt)" in text
    assert "Hugging Face (facebook/sam3" in text and "custom architecture (detector + tracker)" in text
    assert f"{sum(params.values()):,}" in text.splitlines()[-1] and text.splitlines()[-1].startswith("total")


def test_detector_only_checkpoint(tmp_path, capsys):
    from sam3kit.testing import randomize_
    from sam3kit.config import Sam3Config
    from sam3kit.model.sam3 import Sam3Model
    from sam3kit.weights.writer import save_hf

    cfg = Sam3Config.tiny(with_tracker=False)
    save_hf(randomize_(Sam3Model(cfg)).state_dict(), cfg, tmp_path)
    facts = describe(str(tmp_path))
    assert facts["layout"] == "hf_detector" and not facts["model"]["tracker"]
    assert not any(c.startswith("tracker") for c in facts["components"]) and "other" not in facts["components"]
    assert "detector only" in format_table(facts)
    assert "tokenizer   the bundled CLIP vocabulary" in format_table(facts)  # no tokenizer files: still works
    # the official layout holds detector and tracker: no such conversion
    from sam3kit.cli import main

    assert main(["convert", str(tmp_path), str(tmp_path / "o.pt")]) == 2
    assert "detector-only" in capsys.readouterr().err and not (tmp_path / "o.pt").exists()


# ---------------------------------------------------------------- tokenizer, missing tensors, parameter totals
def _tiny(tmp_path, seed=0, **kw):
    from sam3kit.testing import tiny_checkpoint

    return tiny_checkpoint(tmp_path, seed=seed, **kw)


def test_tokenizer_line_says_which_tokenizer_loads(tmp_path):
    """A bare sam3.pt has no tokenizer files, yet concept prompts work: the bundled vocabulary (defect 2)."""
    import sam3kit

    d = _tiny(tmp_path / "pt", layout="official", tokenizer=False)
    facts = describe(str(d / "sam3.pt"))
    assert facts["tokenizer"] == {"source": "bundled", "files": []}
    text = format_table(facts)
    assert "none (concept prompts need" not in text and "the bundled CLIP vocabulary" in text
    assert len(sam3kit.load(d / "sam3.pt").tokenizer.encode("a dog")) >= 2  # text works through it
    (d / "vocab.json").write_text("{}")
    assert "vocab.json without merges.txt: loading fails" in format_table(describe(str(d)))


def test_info_notices_a_missing_tensor(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from sam3kit.cli import main

    d = _tiny(tmp_path)
    sd = load_file(d / "model.safetensors")
    del sd["detector_model.detr_decoder.query_embed.weight"]
    save_file(sd, d / "model.safetensors")
    facts = describe(str(d))
    assert not facts["check"]["complete"]
    assert facts["check"]["problems"] == ["missing: detector_model.detr_decoder.query_embed.weight"]
    assert main(["info", str(d)]) == 2
    out, err = capsys.readouterr()
    assert "sam3kit would refuse this checkpoint: missing: detector_model.detr_decoder.query_embed.weight" in out
    assert out.splitlines()[-1].startswith("total")
    assert len(err.strip().splitlines()) == 1 and "missing: detector_model.detr_decoder.query_embed.weight" in err


def test_parameter_totals_agree_with_convert_and_the_loader(tmp_path, capsys):
    """One count (weights.counting.parameter_count) for info, convert and the loader, in both layouts, with the HF
    layout's two Gaussian matrices (two tensors of the model, also when they differ)."""
    import re

    from safetensors.torch import load_file, save_file

    import sam3kit
    from sam3kit.cli import main
    from sam3kit.weights.counting import parameter_count

    d = _tiny(tmp_path / "hf")
    model = sam3kit.load(d)
    n = parameter_count(model)
    assert n == sum(t.numel() for t in model.state_dict().values())
    assert describe(str(d))["params"] == n
    assert main(["convert", str(d), str(tmp_path / "off" / "sam3.pt")]) == 0
    assert re.search(r"([\d,]+) parameters", capsys.readouterr().out).group(1) == f"{n:,}"
    official = describe(str(tmp_path / "off" / "sam3.pt"))
    assert official["params"] == n and official["tensors"] < official["model_tensors"]  # fused q/k/v in the file
    assert official["file_params"] != n  # the file also holds RoPE tables, a cls slot, unused point projections
    assert parameter_count(sam3kit.load(tmp_path / "off" / "sam3.pt")) == n
    gauss = "tracker_model.shared_image_embedding.positional_embedding"
    sd = load_file(d / "model.safetensors")
    sd[gauss] = sd[gauss] + 1  # the two matrices differ, as in a freshly initialised transformers checkpoint
    save_file(sd, d / "model.safetensors")
    assert describe(str(d))["params"] == parameter_count(sam3kit.load(d)) == n
