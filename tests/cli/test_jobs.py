"""``cli/jobs.py``: inputs collected, finished jobs skipped, one failing job not stopping the others, exit codes."""

from __future__ import annotations

import json
import os

import pytest

from sam3kit.cli.inputs import ImageJob
from sam3kit.cli.jobs import Tally, check_folder, collect_inputs, finish, plan_jobs, run_jobs, settle_model
from sam3kit.errors import ImageError, InputError, OutputError


def test_collect_inputs(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(b"x")
    found, tally = collect_inputs([str(tmp_path / "a.png"), str(tmp_path / "nope.png")], str(tmp_path / "out"))
    assert [j.name for j in found.jobs] == ["a"] and tally.total == 2
    assert tally.user_failed == [str(tmp_path / "nope.png")]
    assert "sam3kit: error:" in capsys.readouterr().err and tally.out_root == tmp_path / "out"
    assert not (tmp_path / "out").exists()  # checked, and nothing left behind
    with pytest.raises(InputError, match="no such file"):
        collect_inputs([str(tmp_path / "nope.png")], str(tmp_path / "out"))
    with pytest.raises(OutputError, match="is a file"):
        collect_inputs([str(tmp_path / "a.png")], str(tmp_path / "a.png"))


def test_output_folder_is_checked_before_any_work(tmp_path, monkeypatch):
    """Defect 4: a --out that cannot be created or written is found by collect_inputs (before the model is loaded
    or an image encoded), by trying it; what the test created is removed again."""
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(OutputError, match=r"cannot be created: .*a.png is a file"):
        collect_inputs([str(tmp_path / "a.png")], str(tmp_path / "a.png" / "sub" / "out"))
    check_folder(tmp_path / "new" / "deeper", "--out")
    assert sorted(os.listdir(tmp_path)) == ["a.png"]
    import tempfile

    def refused(*a, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)  # a read-only folder (tests may run as root)
    with pytest.raises(OutputError, match="cannot be written: Permission denied"):
        check_folder(tmp_path / "new" / "deeper", "--out")
    assert sorted(os.listdir(tmp_path)) == ["a.png"]
    tally = Tally(tmp_path / "out", 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_bytes(b"a file where the image's folder goes")
    assert plan_jobs([ImageJob(tmp_path / "a.png", "a")], lambda j: {}, tally, force=True, quiet=True) == []
    assert tally.user_failed == [str(tmp_path / "a.png")]


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
    assert "done already" in out and "does not match this one (option --o differs: 2 before, 1 now)" in err
    forced = plan_jobs(jobs[:3], options_for, Tally(tmp_path / "out", 3), force=True, quiet=True)
    assert [p.job.name for p in forced] == ["done", "other", "new"]


def _record(path, threshold=0.5, fingerprint="f1", source="/m"):
    from sam3kit.cli.manifest import file_sha256

    return {"sam3kit": "t", "manifest": 2, "image": {"path": str(path), "bytes": path.stat().st_size,
                                                     "sha256": file_sha256(path)},
            "model": {"source": source, "fingerprint": fingerprint}, "threshold": threshold}


def _finished(folder, options):
    folder.mkdir(parents=True)
    (folder / "mask_000.png").write_bytes(b"m")
    (folder / "result.json").write_text(json.dumps({"options": options, "files": ["mask_000.png"]}))


def test_skip_check_keys_on_content_and_names_the_difference(tmp_path, capsys):
    """The resume check: a touched or moved image and another path to the same weights are the same job; what
    differs is named."""
    img = tmp_path / "a.png"
    img.write_bytes(b"pixels")
    _finished(tmp_path / "out" / "a", _record(img))
    os.utime(img, ns=(1, 1))  # touched: same bytes
    job = ImageJob(img, "a")
    tally = Tally(tmp_path / "out", 1)
    assert plan_jobs([job], lambda j: _record(img, source="/other/path/same/weights"), tally, force=False,
                     quiet=True) == [] and tally.skipped == 1
    for opts, says in ((_record(img, threshold=0.3), "option --threshold differs: 0.5 before, 0.3 now"),
                       (_record(img, fingerprint="f2"), "the model differs")):
        tally = Tally(tmp_path / "out", 1)
        assert plan_jobs([job], lambda j: opts, tally, force=False, quiet=True) == []
        assert says in capsys.readouterr().err and tally.user_failed == [str(img)]
    img.write_bytes(b"other pixels")
    tally = Tally(tmp_path / "out", 1)
    assert plan_jobs([job], lambda j: _record(img), tally, force=False, quiet=True) == []
    assert "the image differs (its content changed)" in capsys.readouterr().err
    # a model known only once loaded (a Hub id, no fingerprint yet): pending, then settled by its fingerprint
    (tmp_path / "out" / "a" / "result.json").write_text(json.dumps(
        {"options": _record(img, fingerprint="hub-fp", source="facebook/sam3"), "files": ["mask_000.png"]}))
    for loaded, skipped in (("hub-fp", 1), ("other-fp", 0)):
        tally = Tally(tmp_path / "out", 1)
        todo = plan_jobs([job], lambda j: _record(img, fingerprint=None, source="owner/elsewhere"), tally,
                         force=False, quiet=True)
        assert [p.pending for p in todo] == [True] and todo[0].earlier_model == "hub-fp"
        assert settle_model(todo, loaded, tally, quiet=True) == [] and tally.skipped == skipped
        assert todo[0].options["model"]["fingerprint"] == loaded
    assert "the model differs" in capsys.readouterr().err


def test_force_never_takes_another_images_folder(tmp_path, capsys):
    """Defect 6: --force redoes this image's results, never another image's (a finished or interrupted run)."""
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    mine, other = tmp_path / "x" / "a.png", tmp_path / "y" / "a.png"
    mine.write_bytes(b"mine")
    other.write_bytes(b"other")
    _finished(tmp_path / "out" / "a", _record(other))
    tally = Tally(tmp_path / "out", 1)
    assert plan_jobs([ImageJob(mine, "a")], lambda j: _record(mine), tally, force=True, quiet=True) == []
    assert f"holds the results of another image ({other})" in capsys.readouterr().err
    assert [p.job.path for p in plan_jobs([ImageJob(other, "a")], lambda j: _record(other), Tally(tmp_path / "out", 1),
                                          force=True, quiet=True)] == [other]
    (tmp_path / "out" / "a" / "result.json").unlink()  # an interrupted run of the other image
    (tmp_path / "out" / "a" / ".sam3kit-partial.json").write_text(json.dumps(
        {"files": ["mask_000.png"], "input": {"path": str(other), "sha256": "x"}}))
    tally = Tally(tmp_path / "out", 1)
    assert plan_jobs([ImageJob(mine, "a")], lambda j: _record(mine), tally, force=True, quiet=True) == []
    assert "another image" in capsys.readouterr().err


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
    assert len(err.splitlines()) == 2  # one line per failed input
    assert finish(tally) == 1
    out, err = capsys.readouterr()
    assert out.startswith("sam3kit: 3 images: 1 done, 2 failed; 3 masks -> ") and err.startswith("failed: ")
    assert finish(Tally(tmp_path, 1, user_failed=["x"]), kind="video", unit="track") == 2
    out, err = capsys.readouterr()
    assert "1 video: 0 done, 1 failed; 0 tracks" in out and err == ""  # one failure: said once already
    assert finish(Tally(tmp_path, 2, done=1, skipped=1, outputs=1)) == 0
    assert "2 images: 1 done, 1 skipped (complete); 1 mask ->" in capsys.readouterr().out
