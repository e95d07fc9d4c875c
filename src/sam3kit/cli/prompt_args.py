"""The prompt flags of ``segment`` (``--text``, ``--box``, ``--point``, ``--mask-index`` / ``--best``,
``--everything`` with its generator flags) turned into the prompts every image gets, with the combinations that
have no meaning refused."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Optional

from .inputs import parse_box, parse_point, parse_probability

# the options whose values may start with "-" (negative coordinates; for track's specs, a negative frame index,
# which is then refused as out of range), with their long forms
COORDINATE_OPTIONS = {"-b": "--box", "--box": "--box", "-p": "--point", "--point": "--point", "--mask": "--mask"}


@dataclass(frozen=True)
class Prompt:
    """One prompt applied to every image: a concept (text and/or exemplar boxes), one interactive object, or
    everything (no prompt: ``segment_everything`` with the ``EverythingOptions`` fields in ``everything``).

    Boxes and points are pixel coordinates of the original image: boxes ``[x1, y1, x2, y2]``, points ``[x, y]``.
    """

    kind: str  # "concept", "interactive" or "everything"
    label: str
    text: Optional[str] = None
    boxes: Optional[list] = None  # concept: [[x1, y1, x2, y2], ...]; interactive: one box or None
    box_labels: Optional[list] = None
    points: Optional[list] = None
    point_labels: Optional[list] = None
    multimask: bool = True
    keep: str = "all"  # interactive: "all", "best" or the mask index as a string
    everything: Optional[dict] = None  # everything: the EverythingOptions fields


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """The "prompts" group: ``--text``, ``--box``, ``--point``, ``--mask-index`` / ``--best`` and the two
    thresholds of concept prompts."""
    g = parser.add_argument_group("prompts")
    g.add_argument("-t", "--text", action="append", metavar="TEXT",
                   help="noun phrase whose every instance is found (repeatable: one concept each)")
    g.add_argument("--truncate-text", action="store_true",
                   help="cut a --text longer than the model's context (32 tokens) as the official model does, "
                        "with a warning, instead of stopping with an error")
    g.add_argument("-b", "--box", action="append", type=parse_box, metavar="X1,Y1,X2,Y2[,L]",
                   help="pixel box (repeatable). Without --point: an exemplar, label 1 positive / 0 negative; "
                        "with --point: the object's box. Negative values are accepted (--box -5,10,50,50)")
    g.add_argument("-p", "--point", action="append", type=parse_point, metavar="X,Y[,L]",
                   help="pixel click on one object (repeatable), label 1 foreground / 0 background")
    pick = g.add_mutually_exclusive_group()
    pick.add_argument("--mask-index", type=int, choices=(0, 1, 2),
                      help="with --point: keep this one of the three candidate masks "
                           "(default: all three for one click, the single-output mask otherwise)")
    pick.add_argument("--best", action="store_true", help="with --point: keep the mask of highest predicted IoU")
    g.add_argument("--threshold", type=parse_probability, default=0.5,
                   help="concept prompts: keep instances whose score (class x presence) is above this")
    g.add_argument("--mask-threshold", type=parse_probability, default=0.5,
                   help="concept prompts: mask pixels whose probability is above this")


def build_prompts(args: argparse.Namespace) -> list[Prompt]:
    """The prompts every image gets, checked for combinations that have no meaning (``InputError``).

    ``--text`` (repeats dropped) gives one concept prompt each, with the exemplar ``--box`` prompts if any;
    ``--box`` alone gives one "exemplars" concept; ``--point`` (with at most one positive ``--box``) gives one
    interactive prompt. Mask choice for ``--point``: ``--mask-index`` / ``--best`` keep one of the three
    candidates; otherwise one click (ambiguous) keeps all three, and several clicks or a box the single mask.
    """
    from ..errors import InputError

    from .segment_everything import LABEL, given_flags, options_from_args, record_options

    texts = list(dict.fromkeys(t for t in (args.text or [])))
    boxes = list(args.box or [])
    points = list(args.point or [])
    if getattr(args, "everything", False):
        other = [f for f, given in (("--text", texts), ("--box", boxes), ("--point", points),
                                    ("--mask-index", args.mask_index is not None), ("--best", args.best)) if given]
        if other:
            raise InputError(f"--everything segments the whole image without a prompt; it does not take {other[0]} "
                             "(run twice for both)")
        return [Prompt("everything", LABEL, everything=record_options(options_from_args(args)))]
    flags = given_flags(args)
    if flags:
        raise InputError(f"{flags[0]} is an option of --everything (segment the whole image without a prompt); "
                         "add --everything, or leave it out")
    if any(not t.strip() for t in texts):
        raise InputError("--text is empty: give a noun phrase such as 'red car'")
    if not (texts or boxes or points):
        raise InputError("no prompt: give --text, --box (exemplar), --point, or --everything")
    if points:
        if texts:
            raise InputError("--text finds every instance of a concept and --point segments one object; "
                             "use one or the other (run twice for both)")
        if len(boxes) > 1:
            raise InputError(f"with --point, give at most one --box (the object's box), got {len(boxes)}")
        if boxes and boxes[0][4] == 0:
            raise InputError("with --point, --box is the object's box: a negative label (,0) has no meaning there")
        box = list(boxes[0][:4]) if boxes else None
        if args.mask_index is not None:
            multimask, keep = True, str(args.mask_index)
        elif args.best:
            multimask, keep = True, "best"
        else:  # SAM's advice: several candidates only for an ambiguous prompt (one click, no box)
            multimask, keep = len(points) == 1 and box is None, "all"
        label = "points" + ("+box" if box else "")
        return [Prompt("interactive", label, boxes=box, points=[list(p[:2]) for p in points],
                       point_labels=[p[2] for p in points], multimask=multimask, keep=keep)]
    if args.mask_index is not None or args.best:
        raise InputError("--mask-index and --best choose among the masks of a --point prompt; --text and exemplar "
                         "--box prompts give every instance found")
    if boxes and len(texts) > 1:
        raise InputError("exemplar --box prompts go with one --text (or none); run once per text")
    bx = [list(b[:4]) for b in boxes] or None
    bl = [b[4] for b in boxes] or None
    if not texts:
        return [Prompt("concept", "exemplars", boxes=bx, box_labels=bl)]
    return [Prompt("concept", t, text=t, boxes=bx, box_labels=bl) for t in texts]
