"""``sam3kit segment --everything``: every object and part of each image without a prompt (SAM 1's automatic mask
generator, ``ImagePredictor.segment_everything``), written as the other segment modes write their instances.

The flags carry SAM 1's names (those of its ``scripts/amg.py``) and defaults, and become one ``EverythingOptions``
(checked before any model is loaded: a bad value exits with code 2). Outputs per image: ``mask_NNN.png`` in
``segment_everything``'s order (SAM 1's: predicted IoU decreasing, smaller crops first), ``result.json`` (each
instance with its predicted IoU, stability score, click and crop), ``coco.json`` (one category, "everything"),
``--overlay`` (one colour per mask, larger masks drawn first so that parts stay visible on their objects), and
``--id-map`` (overlaps: the mask of higher predicted IoU).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields
from typing import Any, Optional, Sequence

LABEL = "everything"

# flag -> EverythingOptions field; argparse type; what the help says
_FLAGS = (
    ("--points-per-side", "points_per_side", int, "clicks per side of the grid over the image (and each crop)"),
    ("--points-per-batch", "points_per_batch", int, "clicks decoded at once (memory against speed; same result)"),
    ("--pred-iou-thresh", "pred_iou_thresh", float, "keep masks whose predicted IoU is above this, in [0, 1]"),
    ("--stability-score-thresh", "stability_score_thresh", float,
     "keep masks whose stability score is at least this, in [0, 1]"),
    ("--stability-score-offset", "stability_score_offset", float,
     "logit offset of the stability score (IoU of the mask at +offset and at -offset)"),
    ("--box-nms-thresh", "box_nms_thresh", float, "box IoU above which duplicate masks are dropped, in [0, 1]"),
    ("--crop-n-layers", "crop_n_layers", int, "also segment 2^i x 2^i crops for i = 1..N (each crop is encoded)"),
    ("--crop-nms-thresh", "crop_nms_thresh", float, "box IoU above which duplicates between crops are dropped"),
    ("--crop-overlap-ratio", "crop_overlap_ratio", float, "overlap of neighbouring crops (fraction of the shorter "
                                                          "side)"),
    ("--crop-n-points-downscale-factor", "crop_n_points_downscale_factor", int,
     "the grid of crop layer i has points-per-side / factor^i clicks per side"),
    ("--min-mask-region-area", "min_mask_region_area", float,
     "fill holes and remove islands smaller than this many pixels; 0: off"),
)


def add_everything_arguments(parser: argparse.ArgumentParser) -> None:
    """The "segment everything" group: ``--everything`` and SAM 1's generator options (given only with it)."""
    from ..pipelines.everything import EverythingOptions

    defaults = EverythingOptions()
    g = parser.add_argument_group("segment everything (no prompt)")
    g.add_argument("--everything", action="store_true",
                   help="find every object and part without a prompt: a grid of clicks, masks filtered by "
                        "predicted IoU and stability and de-duplicated (SAM 1's automatic mask generator)")
    for flag, name, kind, text in _FLAGS:
        shown = getattr(defaults, name)
        shown = f"{shown:.4g}" if isinstance(shown, float) else shown
        g.add_argument(flag, type=kind, default=None, metavar="N" if kind is int else "X",
                       help=f"with --everything: {text} (default: {shown})")
    g.add_argument("--single-mask", action="store_true",
                   help="with --everything: one mask per click instead of three candidates")


def given_flags(args: argparse.Namespace) -> list[str]:
    """The generator flags given on the command line (they need ``--everything``)."""
    out = [flag for flag, name, _, _ in _FLAGS if getattr(args, name, None) is not None]
    return out + (["--single-mask"] if getattr(args, "single_mask", False) else [])


def options_from_args(args: argparse.Namespace):
    """``EverythingOptions`` of the flags; ``InputError`` naming the flag for a value out of range."""
    from ..errors import InputError
    from ..pipelines.everything import EverythingOptions

    given = {name: getattr(args, name) for _, name, _, _ in _FLAGS if getattr(args, name, None) is not None}
    if getattr(args, "single_mask", False):
        given["multimask"] = False
    try:
        return EverythingOptions(**given)
    except InputError as e:
        message = str(e)
        for flag, name, _, _ in _FLAGS:
            message = message.replace(name, flag)
        raise InputError(message) from None


def options_of(prompt_options: dict):
    """``EverythingOptions`` of a prompt's recorded options (``Prompt.everything``)."""
    from ..pipelines.everything import EverythingOptions

    names = {f.name for f in fields(EverythingOptions)}
    return EverythingOptions(**{k: v for k, v in prompt_options.items() if k in names})


def record_options(options) -> dict[str, Any]:
    return asdict(options)


def segment(predictor, image, prompt_options: dict, prompt: int, *, with_rle: bool
            ) -> tuple[list[dict], list, dict]:
    """Run ``segment_everything`` on the image set on ``predictor`` (``image``: its pixels, needed by crops).

    Returns the instance records (``sam3kit.io.writers`` format, ids unset), their (H, W) bool masks and the
    prompt's ``result.json`` entry."""
    import numpy as np

    from ..io.rle import encode_rle

    opts = options_of(prompt_options)
    anns = predictor.segment_everything(image if opts.crop_n_layers > 0 else None, options=opts)
    records, masks = [], []
    for i, a in enumerate(anns):
        m = np.asarray(a["segmentation"], dtype=bool)
        x, y, w, h = a["bbox"]
        rec = {"id": None, "prompt": prompt, "index": i, "label": LABEL, "score": None,
               "iou": float(a["predicted_iou"]), "box": [float(x), float(y), float(x + w + 1), float(y + h + 1)]
               if a["area"] else None, "area": int(a["area"]), "mask_index": None, "query_index": None,
               "stability_score": float(a["stability_score"]), "point": [float(v) for v in a["point_coords"][0]],
               "crop_box": [int(v) for v in a["crop_box"]]}
        if with_rle:
            rec["rle"] = encode_rle(m)
        records.append(rec)
        masks.append(m)
    entry = {"kind": "everything", "label": LABEL, "options": record_options(opts), "found": len(records)}
    return records, masks, entry


def overlay(image, records: Sequence[dict], masks: Sequence):
    """Every mask in its own colour (by instance id), larger masks first so that smaller ones (parts) stay visible
    on top; no boxes or captions, which would hide the image at this count."""
    from ..io.overlay import draw_overlay

    order = sorted(range(len(records)), key=lambda i: -records[i]["area"])
    return draw_overlay(image, [masks[i] for i in order], None, ids=[records[i]["id"] for i in order])


def table(name: str, width: int, height: int, records: Sequence[dict], entry: Optional[dict]) -> str:
    """The table printed for one image: one row per mask in id order, with its predicted IoU and stability."""
    n = len(records)
    opts = (entry or {}).get("options") or {}
    side = opts.get("points_per_side")
    lines = [f"{name}  {width}x{height}  {n} mask{'s' if n != 1 else ''}"
             + (f"  ({side}x{side} clicks)" if side else "")]
    header = ["id", "iou", "stability", "x1", "y1", "x2", "y2", "area"]
    rows = [[str(r["id"]), f"{r['iou']:.3f}", f"{r['stability_score']:.3f}",
             *(f"{v:.0f}" if v is not None else "-" for v in (r["box"] or [None] * 4)), f"{r['area']:,}"]
            for r in records]
    if not rows:
        lines.append("  nothing found (lower --pred-iou-thresh or --stability-score-thresh)")
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines.append("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths)))
    lines.extend("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows)
    off = opts.get("stability_score_offset", 1.0)
    lines.append(f"  (iou: predicted IoU; stability: IoU of the mask at logit +{off:g} and -{off:g}; in SAM 1's "
                 "order)")
    return "\n".join(lines)
