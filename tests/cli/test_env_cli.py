"""``sam3kit env`` and ``--help`` / ``--version``."""

from __future__ import annotations

import json

from sam3kit import __version__
from sam3kit.cli.env import collect, format_text


def test_env(cli):
    r = cli("env", "--json")
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert facts["sam3kit"] == __version__ and facts["packages"]["torch"] != "not installed"
    assert facts["threads"]["intra_op"] >= 1 and any("OpenMP" in s or "threads" in s for s in facts["parallel_info"])
    assert facts["probe"]["device"] in ("cpu", "cuda") and len(facts["sdpa"]) == 4
    text = format_text(collect("cpu"))
    for word in ("torch", "threads", "attention kernels on cpu (fp32)", "roi_align", "cuda"):
        assert word in text


def test_help_and_version(cli):
    r = cli("segment", "--help")
    assert r.returncode == 0 and r.stderr == ""
    text = " ".join(r.stdout.split())
    for shown in ("(default: facebook/sam3)", "(default: 0.5)", "(default: sam3kit_out)", "(default: png,json)",
                  "(default: auto)", "(default: fp32)", "--point X,Y[,L]", "examples:"):
        assert shown in text, shown
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"sam3kit {__version__}"
    for cmd in ("info", "convert", "env"):
        r = cli(cmd, "--help")
        assert r.returncode == 0 and "usage: sam3kit " + cmd in r.stdout
