"""``cli/model_args.py``, ``cli/device.py`` and ``cli/exit_codes.py``: the model flags, the checkpoint identity of
the skip check, device names, and how errors become exit codes."""

from __future__ import annotations

import argparse
import os

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


def test_model_identity(tiny_checkpoint, tmp_path):
    """The model of the skip check is its content fingerprint (the one ``load`` gives), read without loading: the
    same for the folder and its weight file, for a touched or copied checkpoint; a Hub id has none yet."""
    import shutil

    from sam3kit.weights.fingerprint import checkpoint_fingerprint

    assert model_identity("owner/name") == {"source": "owner/name", "fingerprint": None}
    folder = model_identity(str(tiny_checkpoint))
    assert folder["source"] == str(tiny_checkpoint.resolve())
    assert folder["fingerprint"] == checkpoint_fingerprint(tiny_checkpoint)
    assert model_identity(str(tiny_checkpoint / "model.safetensors"))["fingerprint"] == folder["fingerprint"]
    copy = shutil.copytree(tiny_checkpoint, tmp_path / "copy")
    os.utime(copy / "model.safetensors", ns=(1, 1))
    assert model_identity(str(copy))["fingerprint"] == folder["fingerprint"]
    assert model_identity(str(copy), image_size=56)["fingerprint"] != folder["fingerprint"]
    (tmp_path / "empty").mkdir()  # not a checkpoint: loading will say why
    assert model_identity(str(tmp_path / "empty"))["fingerprint"] is None


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


def test_report_error_is_one_line_with_details_behind_verbose(capsys):
    """Defect 11: one line on stderr, without terminal colour codes; the rest only with -v (or --debug)."""
    e = CheckpointError("\x1b[31mWeights only load failed\x1b[0m: the pickle is refused\n\x1b[1mline 2\x1b[0m",
                        details=("missing: a.weight", "unexpected: b.weight"))
    assert report_error(e, debug=False) == USER_MISTAKE
    err = capsys.readouterr().err
    assert err == "sam3kit: error: Weights only load failed: the pickle is refused (-v for the details)\n"
    report_error(e, debug=False, verbose=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "sam3kit: error: Weights only load failed: the pickle is refused"
    assert lines[1:] == ["  line 2", "  missing: a.weight", "  unexpected: b.weight"]
    report_error(InputError("no details here"), debug=False)
    assert capsys.readouterr().err == "sam3kit: error: no details here\n"
    report_error(RuntimeError("\n\x1b[33mfirst\x1b[0m\nsecond"), debug=False)  # a bug's message: one line too
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "RuntimeError: first (-v for the details)" in err
