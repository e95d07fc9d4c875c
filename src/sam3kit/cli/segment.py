"""``sam3kit segment``: concept and interactive segmentation of many images, outputs per image in its own folder.

Outputs of ``IMAGE`` go to ``OUT/<stem>/`` (a repeated stem gets ``-2``, ``-3``, ...):

- ``mask_000.png``, ``mask_001.png``, ... (``png``): one white-on-black PNG per mask, numbered by instance id;
- ``coco.json`` (``coco``): a COCO dataset with this image, one category per prompt, RLE segmentations;
- ``overlay.png`` (``--overlay``): masks, boxes, ids and scores over the image;
- ``result.json`` (always, written last): image, prompts (with presence), instances (box, score, IoU, area, mask
  file; with ``json`` each mask's COCO RLE too), the files written and the options used.

An image counts as done, and a re-run skips it, when its ``result.json`` carries the same options (prompts,
thresholds, mask choice, formats, overlay, dtype, model file and image file identity, sam3kit version) and every
file it lists exists. Anything else is redone only with ``--force``, which replaces the folder's outputs; files of an
interrupted run (listed in its ``.sam3kit-partial.json``) are overwritten without it. That machinery is shared with
the other commands that process many inputs: ``jobs.py``, ``manifest.py``, ``job_outputs.py``.

Prompts (``prompt_args.py``): ``--text`` (repeatable: one concept each) and/or exemplar ``--box`` find every
instance; ``--point`` (with at most one ``--box``, the object's box) gives one object's masks. Mixing ``--text`` and
``--point`` is an error: they answer different questions. Mask choice for ``--point``: ``--mask-index i`` or
``--best`` keep one of the three candidate masks; by default a single click (ambiguous: whole, part or sub-part)
keeps all three, and several clicks or a box (unambiguous) give the one single-output mask, as SAM recommends.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from .device import resolve_device
from .inputs import ImageJob, parse_formats
from .jobs import PlannedJob, add_out_argument, add_rerun_arguments, collect_inputs, finish, plan_jobs, run_jobs
from .manifest import as_read_back, is_complete, job_record  # noqa: F401 (is_complete: the skip check, for tests)
from .model_args import add_model_argument, add_runtime_arguments, load_model, model_identity, runtime_record
from .prompt_args import Prompt, add_prompt_arguments, build_prompts

COCO_NAME = "coco.json"
OVERLAY_NAME = "overlay.png"

EXAMPLES = """examples:
  sam3kit segment bus.jpg --model facebook/sam3 --text "yellow school bus" --overlay
  sam3kit segment photos/ --model ./sam3 -t dog -t cat --format all --out results
  sam3kit segment "shots/**/*.png" --model sam3.pt --box 40,60,180,220          # exemplar: find all like it
  sam3kit segment bus.jpg --model ./sam3 --point 320,240 --point 100,50,0 --best  # one object from clicks
"""


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser(
        "segment", parents=[common], formatter_class=formatter, epilog=EXAMPLES,
        help="segment images from text, exemplar boxes or clicks",
        description="Segment every instance of a concept (--text, exemplar --box) or one object from clicks "
                    "(--point, optionally with its --box). Each image is encoded once for all its prompts. "
                    "Outputs go to OUT/<image stem>/.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders (their images) or glob patterns")
    add_model_argument(p)
    add_prompt_arguments(p)
    o = p.add_argument_group("outputs")
    add_out_argument(o)
    o.add_argument("-f", "--format", type=parse_formats, default="png,json", metavar="FMT",
                   help="png (mask PNGs), json (COCO RLE in result.json), coco (coco.json), all, or a comma list")
    o.add_argument("--overlay", action="store_true", help="also write overlay.png: masks, boxes, ids and scores")
    add_rerun_arguments(o, kind="image")
    add_runtime_arguments(p)
    p.set_defaults(run=run)


def options_record(job: ImageJob, model_id: dict, prompts: list[Prompt], args: argparse.Namespace) -> dict:
    """Everything an image's outputs depend on; equal records mean a re-run would write the same files."""
    rec = job_record(job.path, model_id, runtime_record(args), kind="image")
    rec.update(prompts=[asdict(p) for p in prompts], threshold=args.threshold, mask_threshold=args.mask_threshold,
               formats=list(args.format), overlay=bool(args.overlay))
    return as_read_back(rec)


# ----------------------------------------------------------------------------- one image
def segment_image(predictor, image, prompts: list[Prompt], *, threshold: float, mask_threshold: float,
                  with_rle: bool) -> tuple[list[dict], list, list[dict]]:
    """Run every prompt on one (already decoded) image, encoded once.

    Returns:
        records: instance records (``sam3kit.io.writers``) with ids 0..N-1 in table order;
        masks: N (H, W) bool arrays, aligned with ``records``;
        prompt_info: one dict per prompt for ``result.json`` (its inputs and its presence / object score).
    """
    import numpy as np

    from ..io.writers import predict_records, score_order, segment_records

    predictor.set_image(image)
    records, masks, info = [], [], []
    for k, pr in enumerate(prompts):
        entry = {"kind": pr.kind, "label": pr.label}
        if pr.kind == "concept":
            res = predictor.segment(text=pr.text, boxes=pr.boxes, box_labels=pr.box_labels, threshold=threshold,
                                    mask_threshold=mask_threshold)
            recs = segment_records(res, pr.label, k, with_rle=with_rle)
            found = [res.masks[i] for i in score_order(res.scores)]
            entry.update(text=pr.text, boxes=pr.boxes, box_labels=pr.box_labels, presence=float(res.presence),
                         found=len(recs))
        else:
            res = predictor.predict(points=pr.points, point_labels=pr.point_labels, box=pr.boxes,
                                    multimask=pr.multimask)
            keep = None if pr.keep == "all" else ([res.best] if pr.keep == "best" else [int(pr.keep)])
            if not pr.multimask:
                keep = [0]
            recs = predict_records(res, pr.label, k, indices=keep, with_rle=with_rle)
            found = [res.masks[i] for i in (keep if keep is not None else range(res.masks.shape[0]))]
            entry.update(points=pr.points, point_labels=pr.point_labels, box=pr.boxes, multimask=pr.multimask,
                         object_score=float(res.object_score),
                         iou_scores=[float(v) for v in np.asarray(res.iou_scores)])
        for r in recs:
            r["id"] = len(records)
            records.append(r)
        masks.extend(np.asarray(m, dtype=bool) for m in found)
        info.append(entry)
    return records, masks, info


def write_outputs(folder: Path, job: ImageJob, image, records: list[dict], masks: list, prompt_info: list[dict],
                  prompts: list[Prompt], options: dict, args: argparse.Namespace) -> list[str]:
    """Write one image's files (``job_outputs.JobOutputs``: refused if not ours without ``--force``), ``result.json``
    last; returns the names written."""
    from ..io.overlay import overlay_records
    from ..io.writers import coco_document, write_image_png, write_json, write_mask_png
    from .job_outputs import JobOutputs

    H, W = image.shape[:2]
    formats = set(args.format)
    planned = ([f"mask_{r['id']:03d}.png" for r in records] if "png" in formats else []) \
        + ([COCO_NAME] if "coco" in formats else []) + ([OVERLAY_NAME] if args.overlay else [])
    out = JobOutputs.begin(folder, planned, force=bool(args.force))
    if "png" in formats:
        for r, m in zip(records, masks):
            name = f"mask_{r['id']:03d}.png"
            r["mask"] = write_mask_png(folder / name, m, overwrite=out.may_overwrite(name)).name
    if "coco" in formats:
        write_json(folder / COCO_NAME, coco_document(job.path.name, W, H, records),
                   overwrite=out.may_overwrite(COCO_NAME), indent=None)
    if args.overlay:
        pts = [p for pr in prompts if pr.points for p in pr.points]
        labels = [lab for pr in prompts if pr.point_labels for lab in pr.point_labels]
        pboxes = [b for pr in prompts if pr.boxes for b in (pr.boxes if pr.kind == "concept" else [pr.boxes])]
        im = overlay_records(image, records, masks, points=pts or None, point_labels=labels or None,
                             prompt_boxes=pboxes or None)
        write_image_png(folder / OVERLAY_NAME, im, overwrite=out.may_overwrite(OVERLAY_NAME))
    instances = []
    for r in records:
        r = dict(r)
        if "json" not in formats:
            r.pop("rle", None)
        instances.append(r)
    manifest = {"sam3kit": options["sam3kit"], "image": {"path": str(job.path), "width": W, "height": H},
                "model": options["model"].get("source"), "prompts": prompt_info, "instances": instances,
                "files": planned, "options": options}
    return out.commit(manifest)


# ----------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    prompts = build_prompts(args)
    images, tally = collect_inputs(args.images, args.out)
    model_id = model_identity(args.model)
    todo = plan_jobs(images, lambda job: options_record(job, model_id, prompts, args), tally, force=args.force,
                     quiet=args.quiet, kind="image")
    if todo:
        predictor = _load_predictor(args, resolve_device(args.device), prompts)
        run_jobs(todo, lambda p: _segment_one(predictor, p, prompts, args), tally,
                 debug=bool(getattr(args, "debug", False)))
    return finish(tally, kind="image", unit="mask")


def _segment_one(predictor, p: PlannedJob, prompts: list[Prompt],
                 args: argparse.Namespace) -> tuple[int, Optional[str]]:
    """Decode, segment and write one image; returns its mask count and its table (None with ``--quiet``)."""
    import numpy as np

    from ..io.image import load_image
    from .report import image_table

    image = np.require(load_image(p.job.path), requirements="W")  # torch warns on read-only arrays
    records, masks, info = segment_image(predictor, image, prompts, threshold=args.threshold,
                                         mask_threshold=args.mask_threshold,
                                         with_rle=bool({"json", "coco"} & set(args.format)))
    write_outputs(p.folder, p.job, image, records, masks, info, prompts, p.options, args)
    table = None if args.quiet else image_table(str(p.job.path), image.shape[1], image.shape[0], info, records)
    return len(records), table


def _load_predictor(args: argparse.Namespace, device: str, prompts: list[Prompt]):
    """The model of ``--model`` (``model_args.load_model``) in an ``ImagePredictor``; ``--point`` prompts need the
    tracker weights (``InputError`` for a detector-only checkpoint)."""
    import sam3kit

    from ..errors import InputError

    model = load_model(args, device)
    if any(p.kind == "interactive" for p in prompts) and not model.has_tracker:
        raise InputError(f"{args.model} is detector-only: --point prompts need the tracker weights "
                         "(the full facebook/sam3 checkpoint)")
    return sam3kit.ImagePredictor(model)
