"""``sam3kit track``: click / box / mask tracking, and concept detect-and-track, through one video, outputs in
``OUT/<stem>/``.

``<stem>`` is the video file's stem or the frame folder's name. Prompts (``track_args.py``): ``--point
FRAME,X,Y[,LABEL][:ID]``, ``--box FRAME,X1,Y1,X2,Y2[:ID]``, ``--mask FRAME,PNG[:ID]``; a spec without ``:ID`` is
object 1. Concepts: ``--text T`` (repeatable) and ``--exemplar FRAME,X1,Y1,X2,Y2[,LABEL]`` make
``VideoSession.add_concept`` calls (``track_args.build_concepts``), made before the clicks, which then must name
their object: with both, the concepts are tracked first (a click refines an object on a frame already produced),
then the clicks are added. Then ``VideoSession.propagate`` from the earliest prompted frame (``--direction``,
``--max-frames``).

- ``frames.jsonl`` (``jsonl``): one JSON line per tracked frame, in frame order: ``{"frame_index": i, "objects":
  [{"id", "score", "box", "mask"}, ...]}``, objects in id order, every object on every line (an object absent
  from a frame has an empty mask); ``score`` the object-presence probability, ``box`` pixel xyxy as
  ``FrameResult.boxes`` (first / last foreground column and row, inclusive; zeros for an empty mask), ``mask``
  COCO RLE ``{"size": [H, W], "counts": str}`` at the frame's size, ``concept`` the index of the concept that
  found the object (the order of the concepts in ``track.json``; -1 for an object made by clicks, a box or a
  mask): exactly the Python API's ``FrameResult``;
- ``masks/<frame:05d>_<id>.png`` (``png``): one white-on-black PNG per object and tracked frame;
- ``overlay.mp4`` (``--overlay``): the tracked frames in order with masks, boxes, ids and scores (colours fixed by
  id), at the source's frame rate (10 fps for a folder of frames);
- ``track.json`` (always, written last): the video, the prompts, the options, the frames and the files written.

Files are made under a hidden temporary folder inside ``OUT/<stem>/`` and renamed into place once the whole video
is tracked, so an interrupted or failed run leaves none of them (and an earlier run's files stay as they were).
Existing outputs are not replaced without ``--force``; with it, this run's files replace them and the outputs of
the earlier run that this run does not write (e.g. ``masks/`` when ``--format jsonl``) are removed.

A user mistake (unreadable video, frame out of range, point or box outside the frame, mask PNG of another size,
no prompt, outputs in the way) is found before the model is loaded where the video can tell, and exits 2 with one
line on stderr (``exit_codes.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from .device import resolve_device
from .jobs import add_out_argument, check_folder
from .model_args import add_model_argument, add_runtime_arguments, apply_threads, load_model, runtime_record
from .track_args import (TrackConcept, TrackPrompt, add_track_concept_arguments, add_track_prompt_arguments,
                         build_concepts, build_track_prompts, check_concepts, check_prompts, expected_frames)

JSONL_NAME = "frames.jsonl"
MASKS_NAME = "masks"
OVERLAY_NAME = "overlay.mp4"
MANIFEST_NAME = "track.json"
OUTPUT_NAMES = (MASKS_NAME, OVERLAY_NAME, JSONL_NAME, MANIFEST_NAME)  # the order they are published in
FOLDER_FPS = 10.0
TRACK_FORMATS = ("jsonl", "png")

EXAMPLES = """examples:
  sam3kit track clip.mp4 --model facebook/sam3 --point 0,320,240 --overlay      # object 1 from one click
  sam3kit track frames/ --model ./sam3 --box 0,40,60,180,220:1 --point 0,400,300:2 --point 0,420,310,0:2
  sam3kit track clip.mp4 --model ./sam3 --mask 12,person.png --direction backward --format all -o results
  sam3kit track clip.mp4 --model ./sam3 --text person --text "red car" --overlay  # every instance of two concepts
  sam3kit track clip.mp4 --model ./sam3 --exemplar 0,40,60,180,220 --text dog --point 9,120,80,0:3
"""


def parse_track_formats(text: str) -> tuple[str, ...]:
    """``jsonl``, ``png``, ``all`` or a comma list -> sorted tuple of formats."""
    out: set[str] = set()
    for part in (s.strip().lower() for s in text.split(",")):
        if part == "all":
            out.update(TRACK_FORMATS)
        elif part in TRACK_FORMATS:
            out.add(part)
        else:
            raise argparse.ArgumentTypeError(f"unknown format {part!r}: use jsonl, png, all, or a comma list")
    if not out:
        raise argparse.ArgumentTypeError("give at least one format: jsonl, png or all")
    return tuple(sorted(out))


def _frame_count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of frames") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more frames")
    return v


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser(
        "track", parents=[common], formatter_class=formatter, epilog=EXAMPLES,
        help="track objects through a video from clicks, boxes or masks, or every instance of a concept",
        description="Track objects through a video with the tracker's memory, from clicks (--point), boxes (--box) "
                    "or masks (--mask) on any frames, or detect and track every instance of a concept (--text, "
                    "--exemplar). Each prompt names its frame first and its object last (:ID, default object 1; "
                    "required with concepts). Outputs go to OUT/<stem>/: frames.jsonl (one line per frame: every "
                    "object's id, score, box, COCO RLE mask and concept), masks/<frame:05d>_<id>.png with --format "
                    "png, overlay.mp4 with --overlay, and track.json.")
    p.add_argument("video", metavar="VIDEO", help="a video file (MP4, MOV, MKV, ...; decoded with PyAV) or a folder "
                                                  "of frame images (numeric order: 2.jpg before 10.jpg)")
    add_model_argument(p)
    add_track_prompt_arguments(p)
    add_track_concept_arguments(p)
    t = p.add_argument_group("tracking")
    t.add_argument("--direction", choices=("both", "forward", "backward"), default="both",
                   help="from the earliest prompted frame: to the end, to frame 0, or both")
    t.add_argument("--max-frames", type=_frame_count, default=None, metavar="N",
                   help="track at most N frames beyond the start frame in each direction (default: all)")
    o = p.add_argument_group("outputs")
    add_out_argument(o)
    o.add_argument("-f", "--format", type=parse_track_formats, default="jsonl", metavar="FMT",
                   help="jsonl (frames.jsonl), png (masks/<frame:05d>_<id>.png per object and frame), all, or a "
                        "comma list")
    o.add_argument("--overlay", action="store_true", help="also write overlay.mp4: masks, boxes, ids and scores")
    o.add_argument("--force", action="store_true", help="replace the outputs of an earlier run in OUT/<stem>/")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress, only errors and the summary line")
    add_runtime_arguments(p, cache=False)
    p.set_defaults(run=run)


def planned_outputs(args: argparse.Namespace) -> list[str]:
    """The names this run writes into ``OUT/<stem>/``, in the order they are published (``track.json`` last)."""
    want = {MASKS_NAME: "png" in args.format, OVERLAY_NAME: bool(args.overlay), JSONL_NAME: "jsonl" in args.format,
            MANIFEST_NAME: True}
    return [n for n in OUTPUT_NAMES if want[n]]


def frame_record(result) -> dict:
    """One ``frames.jsonl`` line of a ``FrameResult`` (module docstring)."""
    from ..io.rle import encode_rle

    concepts = getattr(result, "concepts", None)
    return {"frame_index": int(result.frame_index),
            "objects": [{"id": int(result.object_ids[k]), "score": float(result.scores[k]),
                         "box": [float(v) for v in result.boxes[k]], "mask": encode_rle(result.masks[k]),
                         "concept": int(concepts[k]) if concepts is not None else -1}
                        for k in range(len(result))]}


# ----------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    from ..errors import OutputError
    from ..io.video import open_video

    started = time.monotonic()
    concepts = build_concepts(args)
    prompts = build_track_prompts(args, concepts=bool(concepts))
    apply_threads(args.threads)
    out_root = Path(args.out).expanduser()
    check_folder(out_root, "--out")
    with open_video(args.video) as source:
        masks = check_prompts(prompts, source.num_frames, source.frame_size)
        check_concepts(concepts, source.num_frames, source.frame_size)
        folder = out_root / source.name
        planned = planned_outputs(args)
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder} is a file, not a folder; remove it or choose another --out")
        if not args.force:
            clash = [n for n in planned if (folder / n).exists()]
            if clash:
                raise OutputError(f"{folder / clash[0]} exists already; pass --force to overwrite, or choose "
                                  "another --out")
        made = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".sam3kit-track-", dir=str(folder)))
        try:
            records = _track(args, source, concepts, prompts, masks, tmp)
            _write(args, source, concepts, prompts, records, tmp, planned)
            _publish(tmp, folder, planned, force=bool(args.force))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if made and not any(folder.iterdir()):
                folder.rmdir()
    n_obj = len({o["id"] for r in records.values() for o in r["objects"]})
    print(f"sam3kit: {source.name}: {len(records)} frame{'s' if len(records) != 1 else ''}, {n_obj} "
          f"object{'s' if n_obj != 1 else ''} -> {folder} ({time.monotonic() - started:.1f} s)", flush=True)
    return 0


def _track(args: argparse.Namespace, source, concepts: list[TrackConcept], prompts: list[TrackPrompt], masks: dict,
           tmp: Path) -> dict[int, dict]:
    """Load the model, add the concepts, prompt, propagate; mask PNGs go to ``tmp/masks/`` as frames come. Returns
    the ``frames.jsonl`` records by frame index."""
    import sam3kit

    from ..io.writers import write_mask_png
    from .report import Reporter

    enabled = False if args.quiet else None
    with Reporter(0, enabled=enabled) as rep:
        model = load_model(args, resolve_device(args.device), rep)
        session = sam3kit.VideoPredictor(model).start(source)
        try:
            for k, c in enumerate(concepts):
                what = repr(c.text) if c.text is not None else f"{len(c.boxes)} exemplar box(es)"
                rep.stage(f"{source.name}: concept {k + 1}/{len(concepts)} ({what} on frame {c.frame})")
                session.add_concept(c.frame, text=c.text, boxes=c.boxes or None, box_labels=c.box_labels or None)
            if concepts and prompts:
                # a click refines an object on a frame the concepts' tracking has produced: track them first (the
                # final propagation below then re-tracks only the refined objects and reuses the others)
                rep.stage(f"{source.name}: tracking the concepts before the clicks")
                for _ in session.propagate(direction=args.direction, max_frames=args.max_frames):
                    pass
            for k, p in enumerate(prompts):
                rep.stage(f"{source.name}: prompt {k + 1}/{len(prompts)} (frame {p.frame}, object {p.obj_id})")
                _add(session, p, masks)
        except BaseException:
            session.close()
            raise
    start = min([p.frame for p in prompts] + [c.frame for c in concepts])  # where propagate starts
    total = expected_frames(start, source.num_frames, args.direction, args.max_frames) or 0
    records: dict[int, dict] = {}
    png_dir = tmp / MASKS_NAME
    with session, Reporter(total, enabled=enabled, unit="frame") as rep:
        rep.stage(f"{source.name}: tracking")
        for result in session.propagate(direction=args.direction, max_frames=args.max_frames):
            records[int(result.frame_index)] = frame_record(result)
            if "png" in args.format:
                for oid, m in zip(result.object_ids.tolist(), result.masks):
                    write_mask_png(png_dir / f"{int(result.frame_index):05d}_{oid}.png", m)
            rep.advance()
    return dict(sorted(records.items()))


def _add(session, p: TrackPrompt, masks: dict) -> None:
    if p.mask_path is not None:
        session.add_prompt(p.frame, obj_id=p.obj_id, mask=masks[p.key])
    else:
        session.add_prompt(p.frame, obj_id=p.obj_id, points=p.points or None,
                           point_labels=p.point_labels or None, box=p.box)


def _write(args: argparse.Namespace, source, concepts: list[TrackConcept], prompts: list[TrackPrompt],
           records: dict[int, dict], tmp: Path, planned: list[str]) -> None:
    """``frames.jsonl``, ``overlay.mp4`` and ``track.json`` into ``tmp``."""
    from .. import __version__
    from ..io.video import write_video
    from ..io.writers import json_text, write_json, write_text

    if JSONL_NAME in planned:
        write_text(tmp / JSONL_NAME, "".join(json_text(r, indent=None) + "\n" for r in records.values()))
    fps = source.fps or FOLDER_FPS
    if OVERLAY_NAME in planned:
        write_video(tmp / OVERLAY_NAME, _overlay_frames(source, records), fps)
    h, w = source.frame_size
    write_json(tmp / MANIFEST_NAME, {
        "sam3kit": __version__, "video": {"path": str(Path(args.video).expanduser().resolve()), "width": w,
                                          "height": h, "num_frames": source.num_frames, "fps": source.fps},
        "model": args.model, "concepts": [c.record() for c in concepts], "prompts": [p.record() for p in prompts],
        "options": {"direction": args.direction, "max_frames": args.max_frames, "formats": list(args.format),
                    "overlay": bool(args.overlay), **runtime_record(args)},
        "frames": list(records), "files": [n for n in planned if n != MANIFEST_NAME]})


def _overlay_frames(source, records: dict[int, dict]):
    """The overlay of every tracked frame, in frame order: (H, W, 3) uint8 arrays, one at a time."""
    import numpy as np

    from ..io.overlay import draw_overlay
    from ..io.rle import decode_rle

    for i, rec in records.items():
        objs = rec["objects"]
        ms = [decode_rle(o["mask"]) for o in objs]
        boxes = [o["box"] if m.any() else None for o, m in zip(objs, ms)]
        im = draw_overlay(source.frame(i), ms or None, boxes or None, ids=[o["id"] for o in objs],
                          captions=[f"{o['id']} {o['score']:.2f}" for o in objs])
        yield np.asarray(im)


def _publish(tmp: Path, folder: Path, planned: list[str], *, force: bool) -> None:
    """Rename the files made in ``tmp`` into ``folder`` (``track.json`` last); with ``force``, the earlier run's
    outputs are replaced and those this run does not write removed."""
    for name in OUTPUT_NAMES:
        dst = folder / name
        if name not in planned:
            if force and dst.is_dir():
                shutil.rmtree(dst)
            elif force and dst.exists():
                dst.unlink()
            continue
        src = tmp / name
        if name == MASKS_NAME and not src.exists():
            src.mkdir()  # no frame tracked: an empty folder
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)
