"""Fixtures of the CLI tests: the real ``sam3kit`` command run as a subprocess, and small test images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_SCRIPT = Path(sys.executable).with_name("sam3kit")


def run_cli(*args, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``sam3kit ARGS`` (the installed console script, else ``python -m sam3kit.cli``); text output."""
    cmd = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "sam3kit.cli"]
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning", COLUMNS="100")
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.fixture(scope="session")
def cli():
    return run_cli


def _smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 90)], axis=-1).astype(np.int64)
    for _ in range(3):  # a few flat discs, so masks and boxes are not all alike
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(5, max(6, min(h, w) // 3))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> Path:
    """A folder with a.png (80x60), b.jpg (40x50), corrupt.png (not an image) and notes.txt."""
    d = tmp_path_factory.mktemp("images")
    Image.fromarray(_smooth_image(60, 80, 1)).save(d / "a.png")
    Image.fromarray(_smooth_image(50, 40, 2)).save(d / "b.jpg", quality=95)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    (d / "notes.txt").write_text("not an image")
    return d
