"""``sam3kit batch`` and ``sam3kit batch merge`` from the shell: the summary and exit codes, refusals, the missing
extras, and a real kill of a running job (SIGKILL to the subprocess) followed by a re-run that finishes it."""

from __future__ import annotations

import json
import os
import sys

import pytest
from batch_helpers import FOUND, NOT_FOUND, THRESHOLD, assert_resumed_equals, cli_command, kill_when_a_shard_is_written
from cli.conftest import run_cli

from sam3kit.cli import main

PROMPTS = ["-t", FOUND, "-t", NOT_FOUND, "--threshold", str(THRESHOLD)]


def test_batch_then_rerun_then_merge(tmp_path, capsys, batch_images, batch_checkpoint):
    """The console script once (a real process), then the same command in this process."""
    out = tmp_path / "job"
    args = ["batch", str(batch_images), "--model", str(batch_checkpoint), *PROMPTS, "--out", str(out)]
    r = run_cli(*args, "--shard-size", "4")
    assert r.returncode == 0, r.stderr
    assert "9 images in 3 shards" in r.stdout and "3 shards written (9 images, 8 instances, 1 error row)" in r.stdout
    assert "1 image or prompt failed" in r.stderr and "corrupt.png" in r.stderr
    assert main(args) == 0
    assert "3 kept from an earlier run" in capsys.readouterr().out
    assert main(args[:4] + ["-t", FOUND, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "differs from this one (texts:" in err and "--force" in err
    assert main(["batch", "merge", str(out), "--coco", str(tmp_path / "all.json")]) == 0
    said = capsys.readouterr().out
    assert "8 images, 8 annotations, 2 categories" in said and "1 image that could not be decoded" in said
    assert len(json.loads((tmp_path / "all.json").read_text())["images"]) == 8


@pytest.mark.parametrize("argv, said", [
    (["batch", "merge", "nowhere"], "needs --coco FILE"),
    (["batch", "merge", "a", "b", "--coco", "x.json"], "takes one job folder, got 2"),
    (["batch", "x.png", "-t", "dog"], "give the job folder: --out DIR"),
    (["batch", "x.png", "-t", "dog", "--out", "o", "--coco", "x.json"], "belong to 'sam3kit batch merge"),
    (["batch", "x.png", "--out", "o"], "no prompt"),
])
def test_usage_errors(tmp_path, monkeypatch, capsys, argv, said):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("module, extra", [("pyarrow", "sam3kit[batch]"), ("ray", "sam3kit[ray]")])
def test_a_missing_extra_is_named(tmp_path, monkeypatch, capsys, batch_images, batch_checkpoint, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    engine = ["--engine", "ray"] if module == "ray" else []
    assert main(["batch", str(batch_images), "--model", str(batch_checkpoint), "-t", "dog", "--out",
                 str(tmp_path / "o"), *engine]) == 2
    assert extra in capsys.readouterr().err
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_killed_job_resumes_to_the_rows_of_an_uninterrupted_run(tmp_path, capsys, many_images, many_reference,
                                                                batch_checkpoint):
    out = tmp_path / "job"
    args = ["batch", str(many_images), "--model", str(batch_checkpoint), *PROMPTS, "--out", str(out)]
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    written = kill_when_a_shard_is_written(cli_command() + args + ["--shard-size", "2"], out, 21, env)
    code = main(args)  # the same command again (the shard size is the earlier run's)
    assert_resumed_equals(out, many_reference, code, capsys.readouterr().out, written, 21)
