"""The CLI's pieces in-process: input expansion, prompt specs and rules, progress line, table, skip check."""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sam3kit.cli import build_parser
from sam3kit.cli.inputs import expand_images, parse_box, parse_formats, parse_point
from sam3kit.cli.report import Progress, image_table
from sam3kit.cli.inputs import ImageJob
from sam3kit.cli.segment import build_prompts, is_complete, segment_image, write_outputs
from sam3kit.errors import InputError, OutputError
from sam3kit.pipelines.results import PredictResult, SegmentResult


def _args(*argv):
    return build_parser().parse_args(["segment", "x.png", *argv])


def test_expand_images(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "e").mkdir()
    for p in ("d/a.png", "d/b.JPG", "d/notes.txt", "e/a.webp"):
        (tmp_path / p).write_bytes(b"x")
    jobs, problems = expand_images([str(tmp_path / "d"), str(tmp_path / "d" / "a.png"), str(tmp_path / "e" / "*.webp"),
                                    str(tmp_path / "missing.png"), str(tmp_path / "none*.png")])
    assert [j.path.name for j in jobs] == ["a.png", "b.JPG", "a.webp"]  # folder filtered, duplicate dropped
    assert [j.name for j in jobs] == ["a", "b", "a-2"]  # a repeated stem gets -2
    assert [p[0] for p in problems] == [str(tmp_path / "missing.png"), str(tmp_path / "none*.png")]
    assert "no such file" in problems[0][1] and "matches" in problems[1][1]
    # an explicit file is taken whatever its suffix (decoding decides)
    jobs, _ = expand_images([str(tmp_path / "d" / "notes.txt")])
    assert [j.path.name for j in jobs] == ["notes.txt"]


def test_specs():
    assert parse_box("10,20,30,40") == (10.0, 20.0, 30.0, 40.0, 1)
    assert parse_box("10 20 30 40 0") == (10.0, 20.0, 30.0, 40.0, 0)
    assert parse_point("3.5,4") == (3.5, 4.0, 1)
    assert parse_point("3,4,0") == (3.0, 4.0, 0)
    assert parse_formats("all") == ("coco", "json", "png")
    assert parse_formats("png, coco") == ("coco", "png")
    for bad in ("1,2,3", "a,b,c,d", "30,20,10,40", "1,2,3,4,2", "1,2,3,4,nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_box(bad)
    for bad in ("1", "1,2,0.5", "1,2,3,4"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_point(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_formats("png,tiff")


def test_prompt_rules():
    p = build_prompts(_args("-t", "dog", "-t", "cat", "-t", "dog"))
    assert [(q.kind, q.text) for q in p] == [("concept", "dog"), ("concept", "cat")]  # repeats dropped
    p = build_prompts(_args("-b", "1,2,30,40", "-b", "5,5,9,9,0"))
    assert p[0].label == "exemplars" and p[0].boxes == [[1, 2, 30, 40], [5, 5, 9, 9]] and p[0].box_labels == [1, 0]
    # one click: ambiguous, three masks; more clicks or a box: the single-output mask
    one = build_prompts(_args("-p", "3,4"))[0]
    assert one.kind == "interactive" and one.multimask and one.keep == "all"
    two = build_prompts(_args("-p", "3,4", "-p", "5,6,0"))[0]
    assert not two.multimask and two.point_labels == [1, 0]
    boxed = build_prompts(_args("-p", "3,4", "-b", "1,1,9,9"))[0]
    assert not boxed.multimask and boxed.boxes == [1, 1, 9, 9] and boxed.label == "points+box"
    assert build_prompts(_args("-p", "3,4", "-p", "5,6", "--best"))[0].keep == "best"
    picked = build_prompts(_args("-p", "3,4", "--mask-index", "2"))[0]
    assert picked.multimask and picked.keep == "2"
    for bad in (("-t", "dog", "-p", "1,1"), ("-p", "1,1", "-b", "0,0,5,5", "-b", "1,1,6,6"),
                ("-p", "1,1", "-b", "0,0,5,5,0"), ("-t", "dog", "--best"), ("-t", "a", "-t", "b", "-b", "0,0,5,5"),
                ("-t", "  "), ()):
        with pytest.raises(InputError):
            build_prompts(_args(*bad))


def test_progress_line():
    s = io.StringIO()
    p = Progress(4, stream=s, enabled=True)
    p.show("a.png")
    p.advance()
    p.show("b.png")
    p.clear()
    text = s.getvalue()
    assert "[0/4]" in text and "[1/4]" in text and "25%" in text and "b.png" in text and "eta" in text
    assert text.endswith("\r\033[K")
    quiet = io.StringIO()
    Progress(4, stream=quiet).show("a.png")  # not a terminal: silent
    assert quiet.getvalue() == ""


def test_image_table():
    prompts = [{"label": "dog", "presence": 0.93}, {"label": "cat", "presence": 0.02},
               {"label": "points", "object_score": 0.88}]
    recs = [{"id": 0, "prompt": 0, "label": "dog", "score": 0.91, "iou": None, "box": [1, 2, 30.25, 40], "area": 1234},
            {"id": 1, "prompt": 2, "label": "points", "score": None, "iou": 0.77, "box": None, "area": 0,
             "best": True}]
    t = image_table("img.png", 640, 480, prompts, recs)
    lines = t.splitlines()
    assert lines[0] == "img.png  640x480  2 masks"
    assert lines[1].split() == ["id", "prompt", "presence", "score", "iou", "x1", "y1", "x2", "y2", "area"]
    assert lines[2].split() == ["0", "dog", "0.93", "0.91", "-", "1.0", "2.0", "30.2", "40.0", "1,234"]
    assert lines[3].split() == ["1", "points", "0.88", "-", "0.77*", "-", "-", "-", "-", "0"]
    assert lines[4] == "  cat: nothing found (presence 0.02)"


class _FakePredictor:
    """Stands in for ImagePredictor: records calls, answers fixed results."""

    def __init__(self):
        self.calls = []

    def set_image(self, image):
        self.calls.append("set_image")
        self.hw = image.shape[:2]

    def segment(self, text=None, boxes=None, box_labels=None, threshold=0.5, mask_threshold=0.5):
        self.calls.append(f"segment:{text}")
        h, w = self.hw
        m = np.zeros((3, h, w), bool)
        m[0, :2, :3] = m[1, 1:, 1:] = True
        return SegmentResult(masks=m, boxes=np.array([[0, 0, 3, 2], [1, 1, w, h], [0, 0, 1, 1]], np.float32),
                             scores=np.array([0.6, 0.9, 0.7], np.float32), presence=0.95,
                             query_indices=np.array([4, 7, 9]))

    def predict(self, points=None, point_labels=None, box=None, multimask=True):
        self.calls.append("predict")
        h, w = self.hw
        m = np.zeros((3 if multimask else 1, h, w), bool)
        m[:, 2:4, 1:5] = True
        iou = np.array([0.5, 0.8, 0.6] if multimask else [0.7], np.float32)
        return PredictResult(masks=m, iou_scores=iou, object_score=0.9, low_res_logits=np.zeros((len(m), 4, 4)),
                             best=int(np.argmax(iou)))


def test_segment_image_encodes_once_and_orders():
    fake = _FakePredictor()
    image = np.zeros((6, 8, 3), np.uint8)
    prompts = build_prompts(_args("-t", "dog", "-t", "cat"))
    recs, masks, info = segment_image(fake, image, prompts, threshold=0.5, mask_threshold=0.5, with_rle=True)
    assert fake.calls == ["set_image", "segment:dog", "segment:cat"]  # one encoding for all prompts
    assert [r["id"] for r in recs] == list(range(6))
    assert [r["score"] for r in recs[:3]] == pytest.approx([0.9, 0.7, 0.6])  # best first
    assert [r["query_index"] for r in recs[:3]] == [7, 9, 4]
    assert masks[0].sum() == recs[0]["area"] == 35 and [r["prompt"] for r in recs] == [0, 0, 0, 1, 1, 1]
    assert info[0]["presence"] == pytest.approx(0.95) and info[1]["label"] == "cat"
    fake = _FakePredictor()
    recs, masks, info = segment_image(fake, image, build_prompts(_args("-p", "2,3", "--best")), threshold=0.5,
                                      mask_threshold=0.5, with_rle=False)
    assert len(recs) == 1 and recs[0]["mask_index"] == 1 and recs[0]["best"] and "rle" not in recs[0]
    assert recs[0]["box"] == [1.0, 2.0, 5.0, 4.0] and info[0]["iou_scores"] == pytest.approx([0.5, 0.8, 0.6])


def test_is_complete(tmp_path):
    opts = {"a": 1}
    assert not is_complete(tmp_path, opts)
    (tmp_path / "mask_000.png").write_bytes(b"x")
    (tmp_path / "result.json").write_text(json.dumps({"options": opts, "files": ["mask_000.png"]}))
    assert is_complete(tmp_path, opts)
    assert not is_complete(tmp_path, {"a": 2})
    (tmp_path / "mask_000.png").unlink()
    assert not is_complete(tmp_path, opts)
    (tmp_path / "result.json").write_text("{trunc")
    assert not is_complete(tmp_path, opts)


def test_help_shows_every_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        fmt = p._get_formatter()
        text = p.format_help()
        for action in p._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            if action.default is argparse.SUPPRESS:  # --debug / -v: also accepted before the command
                continue
            helped = fmt._get_help_string(action)
            assert "default" in helped, f"{name} {action.option_strings[-1]} shows no default"
            if "%(default)s" in helped:
                shown = helped.replace("%(default)s", str(action.default))
                assert " ".join(shown.split()[-2:]) in " ".join(text.split()), (name, shown)


def test_interrupted_run_resumes_without_force(tmp_path):
    args = _args("-t", "dog", "--format", "png,json")
    prompts = build_prompts(args)
    image = np.zeros((6, 8, 3), np.uint8)
    recs, masks, info = segment_image(_FakePredictor(), image, prompts, threshold=0.5, mask_threshold=0.5,
                                      with_rle=True)
    options = {"sam3kit": "test", "model": {"source": "m"}}
    # an interrupted run: its marker lists what it was writing; one mask written, one it will not write again
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / ".sam3kit-partial.json").write_text(json.dumps({"files": ["mask_000.png", "mask_003.png"]}))
    (folder / "mask_000.png").write_bytes(b"old")
    (folder / "mask_003.png").write_bytes(b"old")
    written = write_outputs(folder, ImageJob(Path("x.png"), "x"), image, recs, masks, info, prompts, options, args)
    assert sorted(os.listdir(folder)) == sorted(written) == ["mask_000.png", "mask_001.png", "mask_002.png",
                                                             "result.json"]
    assert (folder / "mask_000.png").read_bytes() != b"old"
    # a file that is not ours is refused without --force, and nothing is written
    other = tmp_path / "y"
    other.mkdir()
    (other / "mask_001.png").write_bytes(b"user's")
    with pytest.raises(OutputError, match="--force"):
        write_outputs(other, ImageJob(Path("y.png"), "y"), image, recs, masks, info, prompts, options, args)
    assert os.listdir(other) == ["mask_001.png"] and (other / "mask_001.png").read_bytes() == b"user's"
