"""The prompt flags of ``track`` (``--point``, ``--box``, ``--mask``; ``--text``, ``--exemplar``) and the
``add_prompt`` / ``add_concept`` calls they make.

Specs: ``--point FRAME,X,Y[,LABEL][:ID]``, ``--box FRAME,X1,Y1,X2,Y2[:ID]``, ``--mask FRAME,PNG[:ID]``; pixel
coordinates of the original frame, label 1 foreground (default) / 0 background. ``ID`` (an int >= 0) names the
object; a spec without ``:ID`` belongs to object 1, so clicks given without ids are all clicks on one object.

The specs of one object on one frame make one ``VideoSession.add_prompt`` call (the clicks in the order given, with
that frame's box if any; a mask alone). Calls go in order of frame, then object id (``TrackPrompt.key``).
Everything that only the video can tell (frame in range, points and boxes inside the frame, the mask's size) is
checked by ``check_prompts`` before the model is loaded.

Concepts (``build_concepts``): each ``--text T`` is one concept detected on ``--concept-frame`` (default 0) and
tracked through the video; the ``--exemplar FRAME,X1,Y1,X2,Y2[,LABEL]`` boxes of one frame make one concept on
that frame (label 1 positive, 0 negative), joined by the text when exactly one ``--text`` is given (the official
"text plus exemplar" prompt), else box-only. Concepts are added first, in that order (texts, then exemplar frames
in frame order); then the ``add_prompt`` calls. With concepts, every ``--point`` / ``--box`` / ``--mask`` must name
its object (``:ID``): the id of an object a concept found refines it, an unused id makes a new object.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .inputs import _label, _numbers

DEFAULT_ID = 1


def _split_id(text: str, what: str) -> tuple[str, Optional[int]]:
    """``"...:ID"`` -> (``"..."``, ID); without a ``:ID`` suffix (digits only) the id is None (``DEFAULT_ID``
    unless concepts are given, see ``build_track_prompts``)."""
    head, sep, tail = text.rpartition(":")
    if not sep or not tail.strip().isdigit():
        if sep and what != "mask":
            raise argparse.ArgumentTypeError(f"{what} {text!r}: the object id after ':' must be an int >= 0")
        return text, None
    return head, int(tail)


def _frame(text: str, what: str, spec: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {spec!r}: the frame {text.strip()!r} must be a frame index "
                                         "(an int)") from None


def parse_track_point(text: str) -> tuple[int, Optional[int], float, float, int]:
    """``FRAME,X,Y[,LABEL][:ID]`` -> (frame, id or None, x, y, label)."""
    body, oid = _split_id(text, "point")
    first, _, rest = body.partition(",")
    frame = _frame(first, "point", text)
    v = _numbers(rest, "point", (2, 3), "FRAME,X,Y or FRAME,X,Y,LABEL in pixels, then :ID if needed "
                                        "(e.g. 0,320,240 or 5,100,50,0:2)")
    label = _label(v[2], "point", text) if len(v) == 3 else 1
    return frame, oid, v[0], v[1], label


def parse_track_box(text: str) -> tuple[int, Optional[int], float, float, float, float]:
    """``FRAME,X1,Y1,X2,Y2[:ID]`` -> (frame, id or None, x1, y1, x2, y2)."""
    body, oid = _split_id(text, "box")
    first, _, rest = body.partition(",")
    frame = _frame(first, "box", text)
    v = _numbers(rest, "box", (4,), "FRAME,X1,Y1,X2,Y2 in pixels, then :ID if needed (e.g. 0,10,20,200,180:2)")
    if v[2] <= v[0] or v[3] <= v[1]:
        raise argparse.ArgumentTypeError(f"box {text!r} must have x1 < x2 and y1 < y2 (top-left, then bottom-right)")
    return frame, oid, v[0], v[1], v[2], v[3]


def parse_track_mask(text: str) -> tuple[int, Optional[int], str]:
    """``FRAME,PNG[:ID]`` -> (frame, id or None, png path). A path containing ``:`` needs the ``:ID`` suffix."""
    body, oid = _split_id(text, "mask")
    first, sep, path = body.partition(",")
    if not sep or not path.strip():
        raise argparse.ArgumentTypeError(f"mask {text!r} must be FRAME,PNG, then :ID if needed (e.g. 0,mask.png:2)")
    return _frame(first, "mask", text), oid, path


def parse_exemplar(text: str) -> tuple[int, float, float, float, float, int]:
    """``FRAME,X1,Y1,X2,Y2[,LABEL]`` -> (frame, x1, y1, x2, y2, label)."""
    first, _, rest = text.partition(",")
    frame = _frame(first, "exemplar", text)
    v = _numbers(rest, "exemplar", (4, 5), "FRAME,X1,Y1,X2,Y2 or FRAME,X1,Y1,X2,Y2,LABEL in pixels (e.g. "
                                           "0,10,20,200,180 or 0,10,20,200,180,0)")
    label = _label(v[4], "exemplar", text) if len(v) == 5 else 1
    if v[2] <= v[0] or v[3] <= v[1]:
        raise argparse.ArgumentTypeError(f"exemplar {text!r} must have x1 < x2 and y1 < y2 (top-left, then "
                                         "bottom-right)")
    return frame, v[0], v[1], v[2], v[3], label


def parse_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("--text must not be empty: give a concept such as 'person' or 'red car'")
    return text


def add_track_concept_arguments(parser: argparse.ArgumentParser) -> None:
    """The "concepts" group of ``track``."""
    g = parser.add_argument_group("concepts (every instance found and tracked, ids given by the tracker)")
    g.add_argument("-t", "--text", action="append", type=parse_text, metavar="TEXT",
                   help="a concept to detect and track (repeatable: one concept each), e.g. --text person")
    g.add_argument("-e", "--exemplar", action="append", type=parse_exemplar, metavar="FRAME,X1,Y1,X2,Y2[,L]",
                   help="an exemplar box of an instance on frame FRAME (repeatable), label 1 positive / 0 negative; "
                        "the boxes of one frame make one concept, with the --text when exactly one is given")
    g.add_argument("--concept-frame", type=int, default=0, metavar="FRAME",
                   help="the frame the --text concepts are detected on first (default 0)")


def add_track_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """The "prompts" group of ``track``."""
    g = parser.add_argument_group("prompts (object id: the :ID suffix, default 1)")
    g.add_argument("-p", "--point", action="append", type=parse_track_point, metavar="FRAME,X,Y[,L][:ID]",
                   help="pixel click on frame FRAME (repeatable), label 1 foreground / 0 background; clicks of one "
                        "object on one frame go together")
    g.add_argument("-b", "--box", action="append", type=parse_track_box, metavar="FRAME,X1,Y1,X2,Y2[:ID]",
                   help="the object's pixel box on frame FRAME (repeatable: one per object and frame)")
    g.add_argument("--mask", action="append", type=parse_track_mask, metavar="FRAME,PNG[:ID]",
                   help="the object's mask on frame FRAME: a PNG of the frame's size, foreground >= 128 "
                        "(not with a --point or --box of the same object and frame)")


@dataclass
class TrackPrompt:
    """One ``add_prompt`` call: object ``obj_id`` on ``frame``. Pixels of the original frame."""

    frame: int
    obj_id: int
    points: list = field(default_factory=list)  # [[x, y], ...]
    point_labels: list = field(default_factory=list)
    box: Optional[list] = None  # [x1, y1, x2, y2]
    mask_path: Optional[str] = None

    @property
    def key(self) -> tuple[int, int]:
        return self.frame, self.obj_id

    def record(self) -> dict:
        """What the run's ``track.json`` says about this prompt."""
        return {"frame": self.frame, "id": self.obj_id, "points": self.points or None,
                "point_labels": self.point_labels or None, "box": self.box, "mask": self.mask_path}


@dataclass
class TrackConcept:
    """One ``add_concept`` call on ``frame``: a text and/or exemplar boxes (pixel xyxy) with labels."""

    frame: int
    text: Optional[str] = None
    boxes: list = field(default_factory=list)  # [[x1, y1, x2, y2], ...]
    box_labels: list = field(default_factory=list)

    def record(self) -> dict:
        return {"frame": self.frame, "text": self.text, "boxes": self.boxes or None,
                "box_labels": self.box_labels or None}


def build_concepts(args: argparse.Namespace) -> list[TrackConcept]:
    """The ``add_concept`` calls of ``--text`` / ``--exemplar`` (module docstring), in call order."""
    texts = list(getattr(args, "text", None) or [])
    exemplars = list(getattr(args, "exemplar", None) or [])
    frame = getattr(args, "concept_frame", 0)
    by_frame: dict[int, TrackConcept] = {}
    joined = texts[0] if len(texts) == 1 and exemplars else None
    for f, x1, y1, x2, y2, label in exemplars:
        c = by_frame.setdefault(f, TrackConcept(f, text=joined))
        c.boxes.append([x1, y1, x2, y2])
        c.box_labels.append(label)
    concepts = [] if joined is not None else [TrackConcept(frame, text=t) for t in texts]
    return concepts + [by_frame[f] for f in sorted(by_frame)]


def build_track_prompts(args: argparse.Namespace, *, concepts: bool = False) -> list[TrackPrompt]:
    """The ``add_prompt`` calls of the flags (module docstring), sorted by frame then object id. ``InputError`` for
    no prompt (when there is no concept either), two boxes of one object on one frame, a mask together with clicks
    / a box there, or (with ``concepts``) a prompt that does not name its object."""
    from ..errors import InputError

    def oid_of(oid: Optional[int], flag: str, frame: int) -> int:
        if oid is not None:
            return oid
        if concepts:
            raise InputError(f"{flag} on frame {frame} does not name its object: with --text / --exemplar, end it "
                             "with :ID (the id of an object a concept found refines it; an unused id makes a new "
                             "object)")
        return DEFAULT_ID

    calls: dict[tuple[int, int], TrackPrompt] = {}

    def get(frame: int, oid: int) -> TrackPrompt:
        return calls.setdefault((frame, oid), TrackPrompt(frame, oid))

    for frame, oid, x, y, label in args.point or []:
        p = get(frame, oid_of(oid, "--point", frame))
        p.points.append([x, y])
        p.point_labels.append(label)
    for frame, oid, *box in args.box or []:
        oid = oid_of(oid, "--box", frame)
        p = get(frame, oid)
        if p.box is not None:
            raise InputError(f"two --box for object {oid} on frame {frame}: give one box per object and frame")
        p.box = list(box)
    for frame, oid, path in args.mask or []:
        oid = oid_of(oid, "--mask", frame)
        p = get(frame, oid)
        if p.mask_path is not None or p.points or p.box is not None:
            raise InputError(f"--mask {frame},{path}:{oid}: object {oid} has another prompt on frame {frame}; a mask "
                             "goes alone (one per object and frame)")
        p.mask_path = path
    if not calls and not concepts:
        raise InputError("no prompt: give at least one --point, --box or --mask (e.g. --point 0,320,240), or a "
                         "concept (--text person, --exemplar 0,10,20,200,180)")
    return [calls[k] for k in sorted(calls)]


def check_prompts(prompts: list[TrackPrompt], num_frames: Optional[int], frame_size: tuple[int, int]) -> dict:
    """Check every prompt against the video (``InputError`` naming the flag) and read the mask PNGs; returns
    ``{(frame, id): (H, W) bool mask}``."""
    from ..errors import ImageError, InputError
    from ..io.writers import read_mask_png
    from ..pipelines import prompts as P
    from ..pipelines.video.checks import frame_index

    h, w = frame_size
    masks = {}
    for p in prompts:
        what = "--mask" if p.mask_path else ("--point" if p.points else "--box")
        try:
            frame_index(p.frame, num_frames, "frame")
        except InputError as e:
            raise type(e)(f"{what} for object {p.obj_id}: {e}") from None
        for x, y in p.points:
            if not (0 <= x <= w and 0 <= y <= h):
                raise InputError(f"--point {p.frame},{x:g},{y:g}:{p.obj_id} lies outside the {w}x{h} frame: pixel "
                                 f"coordinates must be within [0, {w}] x [0, {h}]")
        if p.box is not None:
            try:
                P.check_boxes(p.box, w, h, name="box", single=True)
            except InputError as e:
                raise InputError(f"--box on frame {p.frame} for object {p.obj_id}: {e}") from None
        if p.mask_path is not None:
            path = Path(p.mask_path).expanduser()
            try:
                m = read_mask_png(path)
            except FileNotFoundError:
                raise InputError(f"--mask {path}: no such file") from None
            except (OSError, ValueError) as e:
                raise ImageError(f"--mask {path}: not a readable image ({e})") from None
            if m.shape != (h, w):
                raise InputError(f"--mask {path} is {m.shape[1]}x{m.shape[0]}, the video's frames are {w}x{h}: the "
                                 "mask must have the frame's size")
            masks[p.key] = m
    return masks


def check_concepts(concepts: list[TrackConcept], num_frames: Optional[int], frame_size: tuple[int, int]) -> None:
    """Check every concept against the video (``InputError`` naming the flag): its frame in range, the exemplar
    boxes inside the frame."""
    from ..errors import InputError
    from ..pipelines import prompts as P
    from ..pipelines.video.checks import frame_index

    h, w = frame_size
    for c in concepts:
        what = "--exemplar" if c.boxes else "--concept-frame"
        try:
            frame_index(c.frame, num_frames, "frame")
        except InputError as e:
            raise type(e)(f"{what} {c.frame}: {e}") from None
        if c.boxes:
            try:
                P.check_boxes(c.boxes, w, h, name="exemplar box")
            except InputError as e:
                raise InputError(f"--exemplar on frame {c.frame}: {e}") from None


def expected_frames(start: int, num_frames: Optional[int], direction: str, max_frames: Optional[int]) -> Optional[int]:
    """How many frames ``propagate(start, direction, max_frames)`` yields (None for a stream of unknown length)."""
    if num_frames is None:
        return None
    big = num_frames if max_frames is None else max_frames
    fwd = min(num_frames - 1, start + big) - start + 1
    bwd = start - max(0, start - big) + 1
    return {"forward": fwd, "backward": bwd, "both": fwd + bwd - 1}[direction]
