"""Fixtures of the batch tests (the checkpoint and images are described in ``batch_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

from batch_helpers import FOUND, NOT_FOUND, THRESHOLD, job_rows, make_images, write_batch_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def batch_checkpoint(tmp_path_factory) -> Path:
    return write_batch_checkpoint(tmp_path_factory.mktemp("batch_sam3"))


@pytest.fixture(scope="session")
def batch_images(tmp_path_factory) -> Path:
    """8 images (3 in ``sub/``) and a corrupt one: 9 inputs."""
    return make_images(tmp_path_factory.mktemp("batch_images"), 8)


@pytest.fixture(scope="session")
def many_images(tmp_path_factory) -> Path:
    """40 images and a corrupt one: the job of the kill tests (21 shards of 2)."""
    return make_images(tmp_path_factory.mktemp("many"), 40, seed=3)


@pytest.fixture(scope="session")
def many_reference(tmp_path_factory, many_images, batch_checkpoint):
    """The rows of an uninterrupted local run of the kill tests' job."""
    from sam3kit.batch import BatchOptions, run

    out = tmp_path_factory.mktemp("many_ref")
    run(many_images, batch_checkpoint, out, BatchOptions(texts=(FOUND, NOT_FOUND), threshold=THRESHOLD,
                                                         shard_size=2), progress=False)
    return job_rows(out)
