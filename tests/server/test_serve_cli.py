"""``sam3kit serve``'s own behaviour (the server it starts is tested by test_load.py): a missing extra, an open
host without a token and a port in use exit 2 with one line naming the fix, before any model is loaded."""

from __future__ import annotations

import argparse
import socket
import sys

import pytest

from sam3kit.cli import main
from sam3kit.cli import serve as serve_cli


@pytest.fixture
def no_serving(monkeypatch):
    """A check that regressed would start serving: make that fail instead of hanging the test."""
    monkeypatch.setattr(serve_cli, "bind", lambda *a: pytest.fail("serve went past its checks"))


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn", "python_multipart"])
def test_missing_extra_exits_2_naming_it(monkeypatch, capsys, no_serving, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    if missing == "python_multipart":
        monkeypatch.setitem(sys.modules, "multipart", None)
    assert main(["serve", "--model", "nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    package = missing.replace("_", "-")
    assert err == [f"sam3kit: error: the server needs {package}, which is not installed: pip install "
                   "'sam3kit[server]'"]


def test_open_host_needs_a_token(capsys, no_serving):
    assert main(["serve", "--model", "nowhere", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sam3kit: error: --host 0.0.0.0 lets other machines reach the server: give a --token")


def test_port_in_use_exits_2_before_loading(monkeypatch, capsys):
    monkeypatch.setattr(serve_cli, "load_model", lambda *a: pytest.fail("the model was loaded before the port"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--model", "nowhere", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sam3kit: error: cannot listen on 127.0.0.1:{port}") and "--port 0" in err


def test_parse_bytes():
    assert serve_cli.parse_bytes("123") == 123
    assert serve_cli.parse_bytes("2GiB") == 2 << 30 and serve_cli.parse_bytes("512MB") == 512_000_000
    assert serve_cli.parse_bytes("1.5 g") == 1_500_000_000 and serve_cli.parse_bytes("64kib") == 65536
    for bad in ("", "12 apples", "-5", "0", "1e3"):
        with pytest.raises(argparse.ArgumentTypeError):
            serve_cli.parse_bytes(bad)


def test_flags_make_the_settings(capsys):
    from sam3kit.cli import build_parser

    args = build_parser().parse_args(["serve", "--model", "m", "--host", "0.0.0.0", "--token", "abcdefgh1",
                                      "--max-images", "3", "--max-cache-bytes", "1GiB", "--max-sessions", "2",
                                      "--max-image-pixels", "1000000", "--allow-host", "box.lan",
                                      "--cors-origin", "http://localhost:3000", "--port", "0"])
    s = serve_cli.settings_from_args(args)
    assert (s.host, s.port, s.token, s.max_images, s.max_cache_bytes, s.max_sessions, s.max_image_pixels) == (
        "0.0.0.0", 0, "abcdefgh1", 3, 1 << 30, 2, 1_000_000)
    assert s.allowed_hosts == ("box.lan",) and s.cors_origins == ("http://localhost:3000",)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--token", "--max-images", "--max-cache-bytes", "--max-image-pixels",
                 "--max-sessions", "127.0.0.1)", "(default: 8000)", "(default: 32)"):
        assert flag in out, flag
