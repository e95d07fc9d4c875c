"""Bad invocations: one line on stderr, no traceback (unless --debug), a non-zero exit code, nothing written."""

from __future__ import annotations

import pytest
import torch


def _one_line_error(r, code=2):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sam3kit") and "error" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("argv, says", [
    ([], "required: COMMAND"),
    (["frobnicate"], "invalid choice"),
    (["segment", "{img}"], "no prompt"),
    (["segment", "{img}", "-t", "dog", "-p", "3,4"], "use one or the other"),
    (["segment", "{img}", "--box", "1,2,3"], "x1,y1,x2,y2"),
    (["segment", "{img}", "--box", "30,20,10,40"], "x1 < x2"),
    (["segment", "{img}", "-p", "3,4,2"], "label"),
    (["segment", "{img}", "-p", "3,4", "-b", "0,0,5,5", "-b", "1,1,6,6"], "at most one --box"),
    (["segment", "{img}", "-t", "dog", "--best"], "--point"),
    (["segment", "{img}", "-p", "3,4", "--mask-index", "3"], "invalid choice"),
    (["segment", "{img}", "-t", "dog", "--format", "tiff"], "unknown format"),
    (["segment", "{img}", "-t", "dog", "--threshold", "1.5"], "not in [0, 1]"),
    (["segment", "{missing}", "-t", "dog"], "no such file"),
    (["segment", "{folder}/*.bmp", "-t", "dog"], "no image file matches"),
    (["segment", "{img}", "-t", "dog", "--out", "{img}"], "is a file"),
])
def test_user_mistakes(cli, images, tmp_path, argv, says):
    subs = {"img": images / "a.png", "missing": tmp_path / "nope.png", "folder": images}
    r = cli(*[a.format(**subs) for a in argv], cwd=tmp_path)
    assert says in _one_line_error(r)
    assert r.stdout == "" and list(tmp_path.iterdir()) == []  # nothing written


def test_bad_model_and_debug(cli, images, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("segment", images / "a.png", "-t", "dog", "--model", empty, "-o", tmp_path / "out")
    assert "holds no SAM 3 weights" in _one_line_error(r)
    assert not (tmp_path / "out").exists()
    r = cli("--debug", "segment", images / "a.png", "-t", "dog", "--model", tmp_path / "nothing", "-o",
            tmp_path / "out")
    assert r.returncode == 2 and "Traceback" in r.stderr and "no such file" in r.stderr


def test_info_and_convert_mistakes(cli, tiny_checkpoint, images, tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert "bad.safetensors" in _one_line_error(cli("info", tmp_path / "bad.safetensors"))
    (tmp_path / "x.pt").write_bytes(b"exists")
    r = cli("convert", tiny_checkpoint, tmp_path / "x.pt")
    assert "exists already" in _one_line_error(r) and (tmp_path / "x.pt").read_bytes() == b"exists"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_unavailable(cli, tiny_checkpoint, images, tmp_path):
    r = cli("segment", images / "a.png", "-t", "dog", "--model", tiny_checkpoint, "--device", "cuda",
            "-o", tmp_path / "out")
    assert "CUDA is not available" in _one_line_error(r)


def test_image_size_option(cli, images, tiny_checkpoint, tmp_path):
    """--image-size must tile into whole attention windows (56 px for the tiny model); a good one runs."""
    img = images / "a.png"
    bad = cli("segment", str(img), "--model", str(tiny_checkpoint), "-t", "dog", "--image-size", "100",
              "--out", str(tmp_path / "bad"))
    assert "multiple of" in _one_line_error(bad)
    assert not (tmp_path / "bad").exists()
    ok = cli("segment", str(img), "--model", str(tiny_checkpoint), "-t", "dog", "--image-size", "168",
             "--threshold", "0", "--out", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok" / "a" / "result.json").is_file()
