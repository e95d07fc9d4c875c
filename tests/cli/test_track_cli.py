"""``sam3kit track`` run as a subprocess on a tiny checkpoint and tiny synthetic videos (a folder of PNG frames and
an MP4): frames.jsonl equals the Python API's ``propagate``, png / all formats, overlay.mp4, --force, and every
user mistake exits 2 with one line on stderr."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

import sam3kit
from sam3kit.config import Sam3Config
from sam3kit.io.rle import decode_rle
from sam3kit.io.video import open_video, write_video
from sam3kit.io.writers import read_mask_png
from sam3kit.model.sam3 import Sam3Model
from sam3kit.testing import randomize_, write_tokenizer_files
from sam3kit.weights.writer import save_hf

N, H, W = 6, 48, 64


def _clip() -> list[np.ndarray]:
    """A red disc moving right over a smooth noisy background."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    base = (np.sin(xx / 7.0)[..., None] * 40 + np.cos(yy / 5.0)[..., None] * 40 + 120).repeat(3, axis=2)
    frames = []
    for t in range(N):
        img = base + rng.normal(0, 6, (H, W, 3))
        cx = 12 + (W - 24) * t / (N - 1)
        img[(xx - cx) ** 2 + (yy - H / 2) ** 2 <= 100] = (220, 40, 40)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture(scope="module")
def video_model(tmp_path_factory):
    """A tiny checkpoint whose tracker sees objects (random weights give object scores near 0.5 and empty masks):
    std 0.1 tracker weights and a positive bias on the object-score head."""
    folder = tmp_path_factory.mktemp("tiny_video_sam3")
    cfg = Sam3Config.tiny()
    model = randomize_(Sam3Model(cfg).eval(), seed=0)
    trk = model.tracker_model
    randomize_(trk, 1, std=0.1)
    with torch.no_grad():
        pe = trk.prompt_encoder.shared_embedding.positional_embedding
        pe.normal_(generator=torch.Generator().manual_seed(0))
        trk.shared_image_embedding.positional_embedding.copy_(pe)
        trk.mask_decoder.pred_obj_score_head.proj_out.bias.add_(2.0)
    save_hf(model.state_dict(), cfg, folder)
    write_tokenizer_files(folder)
    return folder


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """``clip/`` (N PNG frames), ``clip.mp4`` (the same frames, 5 fps) and ``still.mp4`` (not a video)."""
    d = tmp_path_factory.mktemp("videos")
    frames = _clip()
    (d / "clip").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(d / "clip" / f"{i}.png")
    write_video(d / "clip.mp4", frames, 5)
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    mask = np.zeros((H, W), bool)
    mask[14:34, 22:44] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(d / "mask.png")
    Image.fromarray(np.zeros((H + 2, W), np.uint8)).save(d / "small.png")
    return d


PROMPTS = ["-p", "2,32,24", "-p", "2,5,5,0", "-b", "2,2,30,20,46:2", "--mask", "4,{mask}:5"]


def _api(model_dir, video, direction="both", max_frames=None, mask=None):
    """What the Python API gives for PROMPTS: {frame: FrameResult}."""
    predictor = sam3kit.VideoPredictor(sam3kit.load(model_dir))
    with predictor.start(video) as s:
        s.add_prompt(2, obj_id=1, points=[[32, 24], [5, 5]], point_labels=[1, 0])
        s.add_prompt(2, obj_id=2, box=[2, 30, 20, 46])
        s.add_prompt(4, obj_id=5, mask=mask)
        return {r.frame_index: r for r in s.propagate(direction=direction, max_frames=max_frames)}


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_equal(lines, api):
    assert [r["frame_index"] for r in lines] == sorted(api)
    nonempty = 0
    for rec in lines:
        res = api[rec["frame_index"]]
        assert [o["id"] for o in rec["objects"]] == res.object_ids.tolist()
        for k, o in enumerate(rec["objects"]):
            m = decode_rle(o["mask"])
            assert o["mask"]["size"] == [H, W] and isinstance(o["mask"]["counts"], str)
            assert np.array_equal(m, res.masks[k])
            assert o["score"] == pytest.approx(float(res.scores[k]), abs=1e-6)
            assert o["box"] == pytest.approx(res.boxes[k].tolist(), abs=1e-6)
            nonempty += int(m.any())
    assert nonempty > 0  # the comparison is not of empty masks only


@pytest.fixture(scope="module")
def folder_run(cli, video_model, videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("track") / "out"
    args = [a.format(mask=videos / "mask.png") for a in PROMPTS]
    r = cli("track", videos / "clip", "--model", video_model, *args, "--format", "all", "--overlay", "-o", out)
    return r, out


def test_folder_all_formats_equal_api(folder_run, video_model, videos):
    r, out = folder_run
    assert r.returncode == 0, r.stderr
    assert "sam3kit: clip: 6 frames, 3 objects" in r.stdout
    folder = out / "clip"
    assert sorted(p.name for p in folder.iterdir()) == ["frames.jsonl", "masks", "overlay.mp4", "track.json"]
    api = _api(video_model, videos / "clip", mask=read_mask_png(videos / "mask.png"))
    lines = _read_jsonl(folder / "frames.jsonl")
    _check_equal(lines, api)
    # per-object PNGs: every object on every tracked frame, equal to the API's masks
    names = sorted(p.name for p in (folder / "masks").iterdir())
    assert names == sorted(f"{f:05d}_{i}.png" for f in range(N) for i in (1, 2, 5))
    for f, res in api.items():
        for k, oid in enumerate(res.object_ids.tolist()):
            assert np.array_equal(read_mask_png(folder / "masks" / f"{f:05d}_{oid}.png"), res.masks[k])
    # overlay: one frame per tracked frame, the source's size, 10 fps for a folder
    with open_video(folder / "overlay.mp4") as v:
        assert v.num_frames == N and v.frame_size == (H, W)
        assert v.fps == pytest.approx(10.0)
    manifest = json.loads((folder / "track.json").read_text())
    assert manifest["frames"] == list(range(N)) and manifest["files"] == ["masks", "overlay.mp4", "frames.jsonl"]
    assert [(p["frame"], p["id"]) for p in manifest["prompts"]] == [(2, 1), (2, 2), (4, 5)]


def test_no_force_refuses_force_replaces(cli, folder_run, video_model, videos):
    _, out = folder_run
    folder = out / "clip"
    before = (folder / "frames.jsonl").read_bytes()
    r = cli("track", videos / "clip", "--model", video_model, "-p", "0,20,24", "-o", out)
    assert r.returncode == 2 and "exists already; pass --force" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert (folder / "frames.jsonl").read_bytes() == before
    r = cli("track", videos / "clip", "--model", video_model, "-p", "0,20,24", "-o", out, "--force",
            "--direction", "forward", "--max-frames", "2")
    assert r.returncode == 0, r.stderr
    # the earlier run's outputs that this one does not write are gone; no temporary folder is left
    assert sorted(p.name for p in folder.iterdir()) == ["frames.jsonl", "track.json"]
    assert [rec["frame_index"] for rec in _read_jsonl(folder / "frames.jsonl")] == [0, 1, 2]


def test_mp4_forward_jsonl_equals_api(cli, video_model, videos, tmp_path):
    args = [a.format(mask=videos / "mask.png") for a in PROMPTS]
    r = cli("track", videos / "clip.mp4", "--model", video_model, *args, "--direction", "backward",
            "--overlay", "-o", tmp_path, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    folder = tmp_path / "clip"
    assert sorted(p.name for p in folder.iterdir()) == ["frames.jsonl", "overlay.mp4", "track.json"]
    api = _api(video_model, videos / "clip.mp4", direction="backward", mask=read_mask_png(videos / "mask.png"))
    assert sorted(api) == [0, 1, 2]
    _check_equal(_read_jsonl(folder / "frames.jsonl"), api)
    with open_video(folder / "overlay.mp4") as v:
        assert v.num_frames == 3 and v.fps == pytest.approx(5.0)


def test_png_only(cli, video_model, videos, tmp_path):
    r = cli("track", videos / "clip", "--model", video_model, "-p", "1,20,24:3", "--format", "png",
            "--max-frames", "1", "--direction", "forward", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "clip"
    assert sorted(p.name for p in folder.iterdir()) == ["masks", "track.json"]
    assert sorted(p.name for p in (folder / "masks").iterdir()) == ["00001_3.png", "00002_3.png"]


@pytest.mark.parametrize("case", [
    ("{d}/missing.mp4", ["-p", "0,5,5"], "no such file"),
    ("{d}/broken.mp4", ["-p", "0,5,5"], "broken.mp4"),
    ("{d}/clip", [], "no prompt"),
    ("{d}/clip", ["-p", "6,5,5"], "out of range"),
    ("{d}/clip", ["-p", "-1,5,5"], "out of range"),
    ("{d}/clip", ["-p", "0,-5,10"], "outside the 64x48 frame"),
    ("{d}/clip", ["-p", "0,5,49:2"], "outside the 64x48 frame"),
    ("{d}/clip", ["-b", "0,-5,10,30,30"], "outside the 64x48"),
    ("{d}/clip", ["--mask", "0,{d}/small.png"], "must have the frame's size"),
    ("{d}/clip", ["--mask", "0,{d}/nothere.png"], "no such file"),
    ("{d}/clip", ["--mask", "-2,{d}/mask.png"], "out of range"),
    ("{d}/clip", ["--mask", "0,{d}/mask.png", "-p", "0,5,5"], "a mask goes alone"),
    ("{d}/clip", ["-p", "0,5"], "FRAME,X,Y"),
    ("{d}/clip", ["-p", "0,5,5:x"], "object id"),
    ("{d}/clip", ["-b", "0,5,5,2,9"], "x1 < x2"),
    ("{d}/clip", ["-p", "0,5,5", "--format", "coco"], "unknown format"),
    ("{d}/clip", ["-p", "0,5,5", "--max-frames", "-1"], "0 or more"),
], ids=lambda c: " ".join(c[1]) or c[0])
def test_user_mistakes_exit_2_with_one_line(video_model, videos, tmp_path, capsys, case):
    """In-process (``main``, as the console script runs it) to keep these fast; the subprocess path is the same."""
    from sam3kit.cli import main

    video, extra, expected = case
    d = videos
    argv = ["track", video.format(d=d), "--model", str(video_model), *[a.format(d=d) for a in extra], "-o",
            str(tmp_path)]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sam3kit"), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_unreadable_video_subprocess(cli, video_model, videos, tmp_path):
    r = cli("track", videos / "broken.mp4", "--model", video_model, "-p", "0,5,5", "-o", tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "broken.mp4" in r.stderr


def test_spec_parsers():
    from sam3kit.cli.track_args import (build_track_prompts, expected_frames, parse_track_box, parse_track_mask,
                                        parse_track_point)

    assert parse_track_point("3,10.5,-2") == (3, None, 10.5, -2.0, 1)  # no :ID: object 1 (build_track_prompts)
    assert parse_track_point("3,10,20,0:7") == (3, 7, 10.0, 20.0, 0)
    assert parse_track_box("0,-5,1,20,30:2") == (0, 2, -5.0, 1.0, 20.0, 30.0)
    assert parse_track_mask("4,C:/masks/a.png") == (4, None, "C:/masks/a.png")
    assert parse_track_mask("4,a:b.png:3") == (4, 3, "a:b.png")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_track_point("x,1,2")
    ns = argparse.Namespace(point=[(2, None, 1.0, 2.0, 1), (0, 2, 3.0, 4.0, 1), (2, 1, 5.0, 6.0, 0)],
                            box=[(2, 1, 0.0, 0.0, 9.0, 9.0)], mask=None)
    calls = build_track_prompts(ns)
    assert [c.key for c in calls] == [(0, 2), (2, 1)]
    assert calls[1].points == [[1.0, 2.0], [5.0, 6.0]] and calls[1].point_labels == [1, 0]
    assert calls[1].box == [0.0, 0.0, 9.0, 9.0]
    assert expected_frames(2, 6, "both", None) == 6
    assert expected_frames(2, 6, "forward", 1) == 2
    assert expected_frames(2, 6, "backward", None) == 3
    assert expected_frames(0, 6, "backward", None) == 1


def test_concept_specs():
    """--text / --exemplar make the add_concept calls of track_args' docstring; with concepts, clicks name their
    object."""
    from sam3kit.cli.track_args import build_concepts, build_track_prompts, parse_exemplar, parse_text
    from sam3kit.errors import InputError

    assert parse_exemplar("3,1,2,30,40") == (3, 1.0, 2.0, 30.0, 40.0, 1)
    assert parse_exemplar("0,1,2,30,40,0") == (0, 1.0, 2.0, 30.0, 40.0, 0)
    for bad in ("x,1,2,3,4", "0,1,2,3", "0,5,5,1,1", "0,1,2,30,40,2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_exemplar(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="empty"):
        parse_text("  ")

    def ns(**kw):
        base = dict(point=None, box=None, mask=None, text=None, exemplar=None, concept_frame=0)
        return argparse.Namespace(**{**base, **kw})

    two = build_concepts(ns(text=["person", "car"], concept_frame=4))
    assert [(c.frame, c.text, c.boxes) for c in two] == [(4, "person", []), (4, "car", [])]
    ex = [(5, 1.0, 2.0, 3.0, 4.0, 1), (2, 0.0, 0.0, 9.0, 9.0, 0), (5, 6.0, 6.0, 8.0, 8.0, 1)]
    joined = build_concepts(ns(text=["dog"], exemplar=ex))  # one text: it joins each exemplar frame
    assert [(c.frame, c.text, c.boxes, c.box_labels) for c in joined] == [
        (2, "dog", [[0.0, 0.0, 9.0, 9.0]], [0]), (5, "dog", [[1.0, 2.0, 3.0, 4.0], [6.0, 6.0, 8.0, 8.0]], [1, 1])]
    apart = build_concepts(ns(text=["dog", "cat"], exemplar=ex[:1]))  # several texts: exemplars box-only
    assert [(c.frame, c.text) for c in apart] == [(0, "dog"), (0, "cat"), (5, None)]
    assert build_track_prompts(ns(text=["dog"]), concepts=True) == []  # concepts alone are enough
    with pytest.raises(InputError, match=":ID"):
        build_track_prompts(ns(point=[(2, None, 1.0, 2.0, 1)]), concepts=True)
    refine = build_track_prompts(ns(point=[(2, 3, 1.0, 2.0, 1)]), concepts=True)
    assert [c.key for c in refine] == [(2, 3)]
    with pytest.raises(InputError, match="no prompt"):
        build_track_prompts(ns())
