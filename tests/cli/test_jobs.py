"""``cli/jobs.py``: inputs collected, finished jobs skipped, one failing job not stopping the others, exit codes."""

from __future__ import annotations

import json

import pytest

from sam3kit.cli.inputs import ImageJob
from sam3kit.cli.jobs import Tally, collect_inputs, finish, plan_jobs, run_jobs
from sam3kit.errors import ImageError, InputError, OutputError


def test_collect_inputs(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(b"x")
    jobs, tally = collect_inputs([str(tmp_path / "a.png"), str(tmp_path / "nope.png")], str(tmp_path / "out"))
    assert [j.name for j in jobs] == ["a"] and tally.total == 2 and tally.user_failed == [str(tmp_path / "nope.png")]
    assert "sam3kit: error:" in capsys.readouterr().err and tally.out_root == tmp_path / "out"
    with pytest.raises(InputError, match="no such file"):
        collect_inputs([str(tmp_path / "nope.png")], str(tmp_path / "out"))
    with pytest.raises(OutputError, match="is a file"):
        collect_inputs([str(tmp_path / "a.png")], str(tmp_path / "a.png"))


def test_plan_skips_done_and_refuses_foreign_folders(tmp_path, capsys):
    jobs = [ImageJob(tmp_path / f"{n}.png", n) for n in ("done", "other", "new", "gone")]
    for j in jobs[:3]:
        j.path.write_bytes(b"x")
    for name, opts in (("done", {"o": 1}), ("other", {"o": 2})):
        (tmp_path / "out" / name).mkdir(parents=True)
        (tmp_path / "out" / name / "result.json").write_text(json.dumps({"options": opts, "files": []}))

    def options_for(job):
        job.path.stat()  # an unreadable input fails its job (OSError)
        return {"o": 1}

    tally = Tally(tmp_path / "out", 4)
    todo = plan_jobs(jobs, options_for, tally, force=False, quiet=False)
    assert [p.job.name for p in todo] == ["new"] and todo[0].folder == tmp_path / "out" / "new"
    assert tally.skipped == 1 and tally.user_failed == [str(jobs[1].path), str(jobs[3].path)]
    out, err = capsys.readouterr()
    assert "done already" in out and "does not match this one" in err
    forced = plan_jobs(jobs[:3], options_for, Tally(tmp_path / "out", 3), force=True, quiet=True)
    assert [p.job.name for p in forced] == ["done", "other", "new"]


def test_run_jobs_counts_and_exit_codes(tmp_path, capsys):
    jobs = [ImageJob(tmp_path / f"{n}.png", n) for n in ("ok", "user", "bug")]
    tally = Tally(tmp_path, 3)
    planned = plan_jobs(jobs, lambda j: {}, tally, force=True, quiet=True)

    def work(p):
        if p.job.name == "user":
            raise ImageError("corrupt image")
        if p.job.name == "bug":
            raise RuntimeError(f"{p.job.path} went wrong")
        return 3, "table of ok"

    run_jobs(planned, work, tally, debug=False)
    assert (tally.done, tally.outputs) == (1, 3)
    assert tally.user_failed == [str(jobs[1].path)] and tally.bug_failed == [str(jobs[2].path)]
    out, err = capsys.readouterr()
    assert out == "table of ok\n"
    assert f"sam3kit: error: {jobs[1].path}: corrupt image" in err  # the path is added ...
    assert f"unexpected error: RuntimeError: {jobs[2].path} went wrong" in err  # ... unless the message has it
    assert finish(tally) == 1
    out, err = capsys.readouterr()
    assert out.startswith("sam3kit: 3 images: 1 done, 2 failed; 3 masks -> ") and err.startswith("failed: ")
    assert finish(Tally(tmp_path, 1, user_failed=["x"]), kind="video", unit="track") == 2
    assert "1 video: 0 done, 1 failed; 0 tracks" in capsys.readouterr().out
    assert finish(Tally(tmp_path, 2, done=1, skipped=1, outputs=1)) == 0
    assert "2 images: 1 done, 1 skipped (complete); 1 mask ->" in capsys.readouterr().out
