"""``cli/model_args.py``, ``cli/device.py`` and ``cli/exit_codes.py``: the model flags, the checkpoint identity of
the skip check, device names, and how errors become exit codes."""

from __future__ import annotations

import argparse

import pytest
import torch

from sam3kit.cli.device import resolve_device
from sam3kit.cli.exit_codes import BUG, USER_MISTAKE, report_error
from sam3kit.cli.model_args import add_model_argument, add_runtime_arguments, model_identity, runtime_record
from sam3kit.errors import CheckpointError, InputError


def test_flags_and_runtime_record():
    p = argparse.ArgumentParser()
    add_model_argument(p)
    add_runtime_arguments(p)
    args = p.parse_args(["--dtype", "bf16", "--image-size", "672"])
    assert args.model == "facebook/sam3" and args.device == "auto"
    assert runtime_record(args) == {"dtype": "bf16", "fast": "none", "image_size": 672}


def test_model_identity(tmp_path):
    assert model_identity("owner/name") == {"source": "owner/name"}  # a Hub id: as given
    (tmp_path / "model.safetensors").write_bytes(b"12")
    (tmp_path / "config.json").write_text("{}")
    folder = model_identity(str(tmp_path))
    assert folder["source"] == str(tmp_path.resolve())
    assert [f["name"] for f in folder["files"]] == ["config.json", "model.safetensors"]
    one = model_identity(str(tmp_path / "model.safetensors"))  # a file and the config.json beside it
    assert [f["name"] for f in one["files"]] == ["model.safetensors", "config.json"]
    assert one["files"][0]["bytes"] == 2


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_report_error(capsys):
    assert report_error(CheckpointError("bad file"), debug=False, prefix="x: ") == USER_MISTAKE
    assert capsys.readouterr().err == "sam3kit: error: x: bad file\n"
    assert report_error(KeyError("k"), debug=False) == BUG
    err = capsys.readouterr().err
    assert err.startswith("sam3kit: unexpected error: KeyError: 'k'") and "--debug" in err
