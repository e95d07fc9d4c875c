"""Shared fixtures: tiny configurations and deterministic random weights."""

from __future__ import annotations

import os

import pytest
import torch

from sam3kit.config import Sam3Config

from fixtures.devices import device_params
from fixtures.weights import randomize_  # noqa: F401  (re-exported for tests)


# Tiny models are dominated by per-op overhead: one thread is faster than two fighting over 2 cores. Subprocesses
# (the CLI tests) inherit the setting through the environment.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> Sam3Config:
    return Sam3Config.tiny()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random SAM 3 checkpoint folder in the facebook/sam3 layout (seed 0): ``config.json``,
    ``model.safetensors`` and the tokenizer files ``vocab.json`` + ``merges.txt``."""
    from sam3kit.testing import tiny_checkpoint as write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_sam3"), layout="hf", seed=0)


@pytest.fixture(scope="session", params=device_params())
def test_device(request):
    """The device of a device-parametrised parity test: ``cpu``, then the device under test when there is one
    (``tests/fixtures/devices.py``: CUDA, or ``$SAM3KIT_TEST_DEVICE``)."""
    request.param.prepare()
    return request.param
