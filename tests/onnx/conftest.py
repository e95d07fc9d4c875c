"""Fixtures of the ONNX tests: one export of the tiny checkpoint (fp32, int8 and fp16 graphs) shared by every test,
the plain and the default-loaded model of the same checkpoint, and a test image."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx.helper")  # (not the bare name: tests/onnx itself would import as a namespace package)
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def plain_model(tiny_checkpoint):
    """The tiny checkpoint loaded without the CPU speed swaps: the model the export traces."""
    import sam3kit

    return sam3kit.load(tiny_checkpoint, fast=sam3kit.SpeedOptions(cpu_kernels=False))


@pytest.fixture(scope="session")
def default_model(tiny_checkpoint):
    """The tiny checkpoint as ``sam3kit.load`` gives it by default (CPU speed swaps on): ImagePredictor's model."""
    import sam3kit

    return sam3kit.load(tiny_checkpoint)


@pytest.fixture(scope="session")
def cli_export(tiny_checkpoint, tmp_path_factory) -> tuple[Path, int, str]:
    """``sam3kit export onnx CKPT OUT --int8 --fp16`` run once (in this process): (OUT, exit code, its output)."""
    from sam3kit.cli import main

    out = tmp_path_factory.mktemp("onnx") / "export"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["export", "onnx", str(tiny_checkpoint), str(out), "--int8", "--fp16"])
    return out, code, printed.getvalue()


@pytest.fixture(scope="session")
def export_dir(cli_export) -> Path:
    """The export of the tiny checkpoint with every variant (do not modify: copy it with ``export_copy``)."""
    out, code, _ = cli_export
    assert code == 0
    return out


@pytest.fixture
def export_copy(export_dir, tmp_path) -> Path:
    """A private copy of the export, for tests that break it."""
    dest = tmp_path / "export"
    shutil.copytree(export_dir, dest)
    return dest


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """An (h, w, 3) uint8 image: gradients and a few flat discs (masks and boxes are not all alike)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 90)], axis=-1).astype(np.int64)
    for _ in range(3):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(5, max(6, min(h, w) // 3))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    """A 90 x 130 test image (not the model's 112 x 112: the resize runs)."""
    return smooth_image(90, 130, 3)
