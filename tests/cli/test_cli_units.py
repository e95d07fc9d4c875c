"""The CLI's pieces in-process: input expansion, prompt specs and rules, progress line, table, skip check."""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sam3kit.cli import attach_negative_values, build_parser, plain_text
from sam3kit.cli.inputs import expand_images, parse_box, parse_formats, parse_point
from sam3kit.cli.report import Reporter, image_table
from sam3kit.cli.inputs import ImageJob
from sam3kit.cli.segment import build_prompts, is_complete, segment_image, write_outputs
from sam3kit.errors import InputError, OutputError
from sam3kit.pipelines.results import PredictResult, SegmentResult


def _args(*argv):
    return build_parser().parse_args(["segment", "x.png", *argv])


def test_expand_images(tmp_path):
    for p in ("d/a.png", "d/b.JPG", "d/notes.txt", "d/.hidden.png", "d/.git/x.png", "d/sub/c.png", "d/out/m.png",
              "e/a.webp", "f/z.png"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"x")
    found = expand_images([str(tmp_path / "d"), str(tmp_path / "d" / "a.png"), str(tmp_path / "f" / "*.png"),
                           str(tmp_path / "missing.png"), str(tmp_path / "none*.png")],
                          exclude=[tmp_path / "d" / "out"])
    jobs = found.jobs
    # a folder: recursive, paths below it kept (suffix dropped); hidden names, other files, the output folder skipped
    assert [j.path.relative_to(tmp_path).as_posix() for j in jobs] == ["d/a.png", "d/b.JPG", "d/sub/c.png", "f/z.png"]
    assert [j.name for j in jobs] == ["a", "b", "sub/c", "z"] and jobs[2].file_name == "sub/c.png"
    assert found.ignored == {"hidden": 2, "not an image": 1, "in the output/cache folder": 1}
    assert found.ignored_text() == "ignored in folders: 2 hidden, 1 in the output/cache folder, 1 not an image"
    assert found.from_folders
    assert [p[0] for p in found.problems] == [str(tmp_path / "missing.png"), str(tmp_path / "none*.png")]
    assert "no such file" in found.problems[0][1] and "matches" in found.problems[1][1]
    # an explicit file is taken whatever its suffix (decoding decides), named by its stem
    only = expand_images([str(tmp_path / "d" / "notes.txt")])
    assert [(j.path.name, j.name) for j in only.jobs] == [("notes.txt", "notes")] and not only.from_folders
    flat = expand_images([str(tmp_path / "d")], recursive=False)
    assert [j.name for j in flat.jobs] == ["a", "b"] and flat.ignored["subfolders (--no-recursive)"] == 2


def test_output_names_do_not_depend_on_the_other_inputs(tmp_path):
    """Defect 6: the same image gets the same folder whatever else is given; two images never share one."""
    for p in ("top/x/a.png", "top/y/a.png", "top/y/b.png"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"x")
    every = {j.path: j.name for j in expand_images([str(tmp_path / "top")]).jobs}
    assert sorted(every.values()) == ["x/a", "y/a", "y/b"]
    subset = expand_images([str(tmp_path / "top" / "**" / "a.png")]).jobs  # a pattern: paths below "top" kept
    assert all(every[j.path] == j.name for j in subset) and len(subset) == 2
    assert [j.name for j in expand_images([str(tmp_path / "top" / "y" / "b.png")]).jobs] == ["b"]
    with pytest.raises(InputError, match=r"x/a.png and .*y/a.png would both write to the output folder 'a'"):
        expand_images([str(tmp_path / "top/x/a.png"), str(tmp_path / "top/y/a.png")])
    (tmp_path / "top/y/a.jpg").write_bytes(b"x")  # a.png and a.jpg in one folder: the same stem
    with pytest.raises(InputError, match="would both write"):
        expand_images([str(tmp_path / "top")])
    (tmp_path / "coco.json.png").write_bytes(b"x")
    with pytest.raises(InputError, match="a name the command writes itself"):
        expand_images([str(tmp_path / "coco.json.png")], reserved=["coco.json"])


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


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_status_line_and_bar():
    s = _Terminal()
    with Reporter(1, stream=s, tick=0) as rep:  # one image: a status line redrawn in place
        rep.stage("loading ./tiny on cpu (fp32)")
        rep.stage("a.png: encoding")
        with rep.paused():
            s.write("TABLE\n")
    text = s.getvalue()
    assert "\r\033[Kloading ./tiny on cpu (fp32)  0s" in text and "a.png: encoding  0s" in text
    assert "\r\033[KTABLE\n" in text and text.endswith("\r\033[K")  # cleared before the table and at the end
    bar = _Terminal()
    with Reporter(3, stream=bar, tick=0) as rep:  # several: a tqdm bar with the stage as its postfix
        rep.stage("b.png: prompt 1/2 'dog'")
        rep.advance()
    assert "1/3" in bar.getvalue() and "b.png: prompt 1/2 'dog'" in bar.getvalue()
    for stream, kw in ((io.StringIO(), {}), (_Terminal(), {"enabled": False})):  # not a terminal, or --quiet
        with Reporter(3, stream=stream, **kw) as rep:
            rep.stage("a.png: encoding")
            rep.advance()
        assert stream.getvalue() == ""


def test_image_table():
    prompts = [{"label": "dog", "presence": 0.93}, {"label": "cat", "presence": 0.02}]
    recs = [{"id": 0, "prompt": 0, "label": "dog", "score": 0.91, "iou": None, "box": [1, 2, 30.25, 40], "area": 1234}]
    lines = image_table("img.png", 640, 480, prompts, recs).splitlines()
    assert lines[0] == "img.png  640x480  1 mask"
    assert lines[1].split() == ["id", "prompt", "presence", "score", "x1", "y1", "x2", "y2", "area"]
    assert lines[2].split() == ["0", "dog", "0.93", "0.91", "1.0", "2.0", "30.2", "40.0", "1,234"]
    assert lines[3] == "  cat: nothing found (presence 0.02)"
    assert lines[4].startswith("  (presence: probability the concept is in the image")
    # interactive: the object score is called so, and the legend explains the * after the best IoU
    clicks = [{"label": "points", "object_score": 0.88}]
    recs = [{"id": 0, "prompt": 0, "label": "points", "score": None, "iou": 0.5, "box": None, "area": 0},
            {"id": 1, "prompt": 0, "label": "points", "score": None, "iou": 0.77, "box": [1, 1, 3, 3], "area": 4,
             "best": True}]
    lines = image_table("img.png", 640, 480, clicks, recs).splitlines()
    assert "presence" not in "\n".join(lines[:4]) and "object score" in lines[1]
    assert lines[1].split() == ["id", "prompt", "object", "score", "iou", "x1", "y1", "x2", "y2", "area"]
    assert lines[3].split() == ["1", "points", "0.88", "0.77*", "1.0", "1.0", "3.0", "3.0", "4"]
    assert "* = highest" in lines[4] and "object score: probability the clicked object is there" in lines[4]


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


def test_segment_image_encodes_once_and_keeps_the_api_order():
    fake = _FakePredictor()
    image = np.zeros((6, 8, 3), np.uint8)
    prompts = build_prompts(_args("-t", "dog", "-t", "cat"))
    stages = []
    recs, masks, info = segment_image(fake, image, prompts, threshold=0.5, mask_threshold=0.5, with_rle=True,
                                      stage=stages.append)
    assert fake.calls == ["set_image", "segment:dog", "segment:cat"]  # one encoding for all prompts
    assert stages == ["encoding", "prompt 1/2 'dog'", "prompt 2/2 'cat'"]
    assert [r["id"] for r in recs] == list(range(6))
    # defect 3: the order of the API's result (query order), not sorted by score: instance i is masks[i]
    assert [r["score"] for r in recs[:3]] == pytest.approx([0.6, 0.9, 0.7])
    assert [r["query_index"] for r in recs[:3]] == [4, 7, 9] and [r["index"] for r in recs[:3]] == [0, 1, 2]
    api = fake.segment(text="dog")
    assert all(np.array_equal(masks[i], api.masks[i]) for i in range(3))
    assert masks[1].sum() == recs[1]["area"] == 35 and [r["prompt"] for r in recs] == [0, 0, 0, 1, 1, 1]
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


def test_negative_coordinates_are_values():
    """Defect 8: ``--box -5,10,50,50`` and ``-p -3,4`` reach the coordinate parsers (then the predictor says the
    box is outside the image) instead of argparse's "expected one argument"."""
    from sam3kit.cli.prompt_args import COORDINATE_OPTIONS

    argv = ["segment", "x.png", "--box", "-5,10,50,50", "-b", "-1.5,2,3,4", "-p", "-3,4", "--point", "-.5,2,0",
            "--box=-7,1,2,3", "-t", "dog", "--", "-9,9"]
    fixed = attach_negative_values(argv, COORDINATE_OPTIONS)
    assert fixed[2:7] == ["--box=-5,10,50,50", "--box=-1.5,2,3,4", "--point=-3,4", "--point=-.5,2,0",
                          "--box=-7,1,2,3"]
    assert fixed[-2:] == ["--", "-9,9"]  # after "--": untouched
    args = build_parser().parse_args(fixed[:-2] + attach_negative_values(["-b", "-1 2 3 4"], COORDINATE_OPTIONS))
    assert args.box == [(-5.0, 10.0, 50.0, 50.0, 1), (-1.5, 2.0, 3.0, 4.0, 1), (-7.0, 1.0, 2.0, 3.0, 1),
                        (-1.0, 2.0, 3.0, 4.0, 1)]
    assert args.point == [(-3.0, 4.0, 1), (-0.5, 2.0, 0)]
    assert attach_negative_values(["-t", "-dog", "-b", "--force"], COORDINATE_OPTIONS) == ["-t", "-dog", "-b",
                                                                                         "--force"]


def test_help_is_plain_text():
    """Help texts come from docstrings: no reStructuredText markup reaches the terminal."""
    assert plain_text("see ``OUT/<stem>/`` and :func:`sam3kit.load`, :class:`~x.Y`::") == \
        "see OUT/<stem>/ and sam3kit.load, x.Y:"
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for text in [parser.format_help()] + [p.format_help() for p in sub.choices.values()]:
        assert "``" not in text and ":func:" not in text and ":class:" not in text, text


def test_write_outputs_never_writes_nan(tmp_path):
    """Defect 10: a score that is not finite becomes null in strict JSON, with a warning."""
    args = _args("-t", "dog", "--format", "png,json,coco")
    prompts = build_prompts(args)
    image = np.zeros((6, 8, 3), np.uint8)
    recs, masks, info = segment_image(_FakePredictor(), image, prompts, threshold=0.5, mask_threshold=0.5,
                                      with_rle=True)
    recs[1]["score"] = float("nan")
    info[0]["presence"] = float("inf")
    write_outputs(tmp_path, ImageJob(Path("x.png"), "x"), image, recs, masks, info, prompts,
                  {"sam3kit": "test", "model": {"source": "m"}}, args)

    def refuse(name):
        raise ValueError(f"{name} in strict JSON")

    for name in ("result.json", "coco.json"):
        doc = json.loads((tmp_path / name).read_text(), parse_constant=refuse)
    res = json.loads((tmp_path / "result.json").read_text(), parse_constant=refuse)
    assert res["instances"][1]["score"] is None and res["prompts"][0]["presence"] is None
    assert doc["annotations"][1]["score"] is None


def test_id_map_output(tmp_path):
    from sam3kit.io.writers import read_id_map_png

    args = _args("-t", "dog", "--format", "png", "--id-map")
    prompts = build_prompts(args)
    image = np.zeros((6, 8, 3), np.uint8)
    recs, masks, info = segment_image(_FakePredictor(), image, prompts, threshold=0.5, mask_threshold=0.5,
                                      with_rle=False)
    written = write_outputs(tmp_path, ImageJob(Path("x.png"), "x"), image, recs, masks, info, prompts,
                            {"sam3kit": "test", "model": {"source": "m"}}, args)
    assert "id_map.png" in written
    ids = read_id_map_png(tmp_path / "id_map.png")
    assert ids.dtype == np.uint16 and ids.shape == (6, 8)
    # masks 0 and 1 overlap at [1, 1:3]: instance 1 (score 0.9) wins over instance 0 (0.6)
    expected = np.zeros((6, 8), np.uint16)
    expected[masks[0]] = 1
    expected[masks[1]] = 2
    assert np.array_equal(ids, expected)
