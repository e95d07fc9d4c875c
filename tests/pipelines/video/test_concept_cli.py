"""``sam3kit track --text / --exemplar`` in process on the biased concept model (``concept_models``: the random
detector and tracker get fixed offsets so that concept tracks really exist): frames.jsonl equals the Python API's
``add_concept`` + ``propagate`` with each object's concept, track.json records the concepts, and the concept flags'
mistakes exit 2 before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import sam3kit
from sam3kit.cli import main
from sam3kit.cli import track as track_cli
from sam3kit.io.rle import decode_rle

from concept_models import concept_video_model
from video_clips import moving_disc_clip

N = 12


@pytest.fixture(scope="module")
def concept_model():
    return concept_video_model(0)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("concept_clip") / "clip"
    d.mkdir()
    for i, f in enumerate(moving_disc_clip(N)):
        Image.fromarray(f).save(d / f"{i}.png")
    return d


@pytest.fixture()
def patched(monkeypatch, concept_model):
    """The CLI's model loading replaced by the biased in-memory model (it cannot be saved as a checkpoint: its
    offsets are wrappers around the modules)."""
    monkeypatch.setattr(track_cli, "load_model", lambda args, device, rep: concept_model)
    return concept_model


def test_text_concept_equals_the_api(patched, frames_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["track", str(frames_dir), "--model", "biased-in-memory", "--text", "thing", "--text", "other",
                 "--direction", "forward", "-o", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in (out / "clip" / "frames.jsonl").read_text().splitlines()]
    with sam3kit.VideoPredictor(patched).start(frames_dir) as session:
        session.add_concept(0, text="thing")
        session.add_concept(0, text="other")
        ref = list(session.propagate(direction="forward"))
    assert [r["frame_index"] for r in lines] == [r.frame_index for r in ref] == list(range(N))
    seen = set()
    for rec, r in zip(lines, ref):
        assert [o["id"] for o in rec["objects"]] == r.object_ids.tolist()
        assert [o["concept"] for o in rec["objects"]] == r.concepts.tolist()
        for o, m, s in zip(rec["objects"], r.masks, r.scores):
            assert np.array_equal(decode_rle(o["mask"]), m) and o["score"] == pytest.approx(float(s), abs=1e-6)
        seen.update(r.concepts.tolist())
    assert seen == {0, 1}  # both concepts found (and tracked) something
    manifest = json.loads((out / "clip" / "track.json").read_text())
    assert [c["text"] for c in manifest["concepts"]] == ["thing", "other"] and manifest["prompts"] == []


def test_exemplar_with_text_and_refinement(patched, frames_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["track", str(frames_dir), "--model", "m", "--text", "thing", "--exemplar", "0,10,10,40,40",
                 "--point", "3,30,30:1", "--direction", "forward", "--max-frames", "5", "-o", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in (out / "clip" / "frames.jsonl").read_text().splitlines()]
    with sam3kit.VideoPredictor(patched).start(frames_dir) as session:
        session.add_concept(0, text="thing", boxes=[[10, 10, 40, 40]], box_labels=[1])
        first = list(session.propagate(direction="forward", max_frames=5))  # the CLI tracks the concepts first
        session.add_prompt(3, obj_id=1, points=[[30, 30]], point_labels=[1])
        ref = list(session.propagate(direction="forward", max_frames=5))
    assert any(not np.array_equal(a.masks, b.masks) for a, b in zip(first, ref))  # the click changed something
    assert [r["frame_index"] for r in lines] == [r.frame_index for r in ref]
    for rec, r in zip(lines, ref):
        assert [o["id"] for o in rec["objects"]] == r.object_ids.tolist()
        for o, m in zip(rec["objects"], r.masks):
            assert np.array_equal(decode_rle(o["mask"]), m)
    manifest = json.loads((out / "clip" / "track.json").read_text())
    assert manifest["concepts"] == [{"frame": 0, "text": "thing", "boxes": [[10.0, 10.0, 40.0, 40.0]],
                                     "box_labels": [1]}]


@pytest.mark.parametrize("argv, needle", [
    (["--text", "thing", "--point", "0,5,5"], ":ID"),
    (["--exemplar", "0,10,10,400,40"], "exemplar"),
    (["--text", "thing", "--concept-frame", str(N)], "out of range"),
    (["--text", " "], "empty"),
])
def test_concept_mistakes_exit_2(patched, frames_dir, tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) if needle == "empty" else _no_raise():
        code = main(["track", str(frames_dir), "--model", "m", "-o", str(out), "-q", *argv])
        assert code == 2
    err = capsys.readouterr().err
    assert needle in err and not (out / "clip").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
