"""The ray engine on one local Ray instance (2 CPUs, a 150 MB object store) started once for this module: the same
rows as the local engine, and a killed Ray job (SIGKILL to the driver, a subprocess connected through
``RAY_ADDRESS``) resumed to the rows of an uninterrupted run."""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from batch_helpers import (FOUND, NOT_FOUND, THRESHOLD, assert_resumed_equals, cli_command,  # noqa: E402
                           job_rows, kill_when_a_shard_is_written)

from sam3kit.batch import BatchOptions, run  # noqa: E402
from sam3kit.cli import main  # noqa: E402

OPTIONS = BatchOptions(texts=(FOUND, NOT_FOUND), threshold=THRESHOLD, shard_size=4)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for the module; yields its address (what ``RAY_ADDRESS`` names)."""
    if ray.is_initialized():
        pytest.skip("a Ray session is already open in this process")
    ray.init(num_cpus=2, object_store_memory=150 * 2**20, include_dashboard=False, log_to_driver=False,
             logging_level="warning")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_gives_the_rows_of_the_local_engine(cluster, tmp_path, batch_images, batch_checkpoint):
    local = run(batch_images, batch_checkpoint, tmp_path / "local", OPTIONS, progress=False)
    seen = []
    import dataclasses

    on_ray = run(batch_images, batch_checkpoint, tmp_path / "ray",
                 dataclasses.replace(OPTIONS, engine="ray", workers=2), progress=seen.append)
    assert on_ray.placement["workers"] == 2 and on_ray.placement["cpus_per_worker"] == 1
    assert on_ray.placement["gpus_per_worker"] == 0 and on_ray.placement["device"] == "cpu"
    assert (on_ray.written, on_ray.processed, on_ray.instances, on_ray.errors) == \
        (local.written, local.processed, local.instances, local.errors) == (3, 9, 8, 1)
    assert sum(seen) == 9  # the actors' progress reached the driver
    assert job_rows(tmp_path / "ray").equals(job_rows(tmp_path / "local"))


def test_killed_ray_job_resumes_to_the_rows_of_an_uninterrupted_run(cluster, tmp_path, capsys, many_images,
                                                                    many_reference, batch_checkpoint):
    out = tmp_path / "job"
    args = ["batch", str(many_images), "--model", str(batch_checkpoint), "-t", FOUND, "-t", NOT_FOUND,
            "--threshold", str(THRESHOLD), "--out", str(out), "--engine", "ray", "--workers", "1"]
    env = dict(os.environ, RAY_ADDRESS=cluster, PYTHONWARNINGS="ignore::DeprecationWarning")
    written = kill_when_a_shard_is_written(cli_command() + args + ["--shard-size", "2"], out, 21, env)
    code = main(args)  # the same command, in this process (its Ray session is the module's)
    assert_resumed_equals(out, many_reference, code, capsys.readouterr().out, written, 21)


def test_a_workers_sam3kit_error_reaches_the_user_without_rays_wrapping():
    """An actor that fails to start (a checkpoint with other weights on a node, say) reaches the driver as Ray's
    error with the text of the worker's traceback; the sam3kit error in it is raised instead (exit code 2)."""
    from sam3kit.batch.ray_engine import _sam3_cause
    from sam3kit.errors import CheckpointError, InputError

    class ActorDied(Exception):
        def __init__(self, text):
            super().__init__("The actor died because of an error raised in its creation task")
            self.error_msg = text

    text = ("Traceback (most recent call last):\n  File \"worker.py\", line 76, in load_model\n"
            "sam3kit.errors.CheckpointError: /m: this checkpoint (fingerprint beffce14a769) is not the one\n")
    wrapped = RuntimeError("dataset failed")
    wrapped.__cause__ = ActorDied(text)
    got = _sam3_cause(wrapped)
    assert isinstance(got, CheckpointError)
    assert str(got) == "/m: this checkpoint (fingerprint beffce14a769) is not the one"

    class TaskError(Exception):
        cause = InputError("bad box")
    assert isinstance(_sam3_cause(TaskError("x")), InputError)
    assert _sam3_cause(RuntimeError("a bug in Ray")) is None
