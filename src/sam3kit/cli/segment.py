"""``sam3kit segment``: concept and interactive segmentation of many images, outputs per image in its own folder.

Each image's outputs go to ``OUT/<name>/``, ``<name>`` a fixed function of the input (``inputs.py``): an image
found in a folder argument keeps its path below that folder without the suffix (``photos/`` -> ``OUT/sub/a/`` for
``photos/sub/a.png``; folders are searched recursively unless ``--no-recursive``, hidden files skipped); a file
given by itself goes to ``OUT/<stem>/``. Two inputs that would share a folder are an error before any work.

- ``mask_000.png``, ``mask_001.png``, ... (``png``): one white-on-black PNG per instance, numbered by instance id.
  Ids follow the prompts in order and, within a prompt, the order of the API's result: the detector's query order
  for ``--text`` / exemplar ``--box`` (``segment``'s order, not sorted by score), the candidate order for
  ``--point``. With one prompt, ``mask_001.png`` is ``segment(...).masks[1]``;
- ``coco.json`` (``coco``): a COCO dataset with this image, one category per prompt, RLE segmentations; for a run
  over folders, patterns or several images also ``OUT/coco.json``, all of the run's images in one dataset
  (distinct image ids, ``file_name`` = the path below the folder argument);
- ``id_map.png`` (``--id-map``): a 16-bit PNG, 0 background, ``i + 1`` where instance ``i`` is (overlaps: the
  instance of highest score / predicted IoU);
- ``overlay.png`` (``--overlay``): masks, boxes, ids and scores over the image;
- ``result.json`` (always, written last): image, prompts (with presence), instances (box, score, IoU, area, mask
  file; with ``json`` each mask's COCO RLE too), the files written and the options used.

An image counts as done, and a re-run skips it, when its ``result.json`` carries the same options (prompts,
thresholds, formats, overlay, id map, dtype, image size, sam3kit version), the same image content (SHA-256 of the
file) and the same model (its files, else ``Sam3Model.fingerprint``), and every file it lists exists; otherwise the
error names what differs. Redoing it needs ``--force``, which replaces the folder's outputs, but never those of
another image. Files of an interrupted run (listed in its ``.sam3kit-partial.json``) are overwritten without it.
That machinery is shared with the other commands that process many inputs: ``jobs.py``, ``manifest.py``,
``job_outputs.py``.

Before any image is encoded: the output folders are checked (``jobs.check_folder``), the model is loaded, and
every ``--text`` is checked against the model's context (an overlong one stops the command once, unless
``--truncate-text``). ``--cache DIR`` keeps the encodings on disk, so another run with other prompts on the same
images skips the image encoder.

``--model`` may name a folder written by ``sam3kit export onnx``: the images then run through ONNX Runtime
(``sam3kit.onnx.OnnxPredictor``) and the command imports no PyTorch; ``onnx_model.py`` maps the runtime flags.

Prompts (``prompt_args.py``): ``--text`` (repeatable: one concept each) and/or exemplar ``--box`` find every
instance; ``--point`` (with at most one ``--box``, the object's box) gives one object's masks; ``--everything`` (no
prompt; ``segment_everything.py``) every object and part, as SAM 1's automatic mask generator. Mixing ``--text`` and
``--point`` is an error: they answer different questions; ``--everything`` takes no prompt. Mask choice for
``--point``: ``--mask-index i`` or ``--best`` keep one of the three candidate masks; by default a single click
(ambiguous: whole, part or sub-part) keeps all three, and several clicks or a box (unambiguous) give the one
single-output mask, as SAM recommends.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

from .device import resolve_device
from .inputs import ImageJob, parse_formats
from .jobs import (PlannedJob, Tally, add_out_argument, add_recursive_argument, add_rerun_arguments, check_folder,
                   collect_inputs, finish, plan_jobs, run_jobs, settle_model)
from .manifest import as_read_back, is_complete, job_record  # noqa: F401 (is_complete: the skip check, for tests)
from .model_args import (add_model_argument, add_runtime_arguments, apply_threads, load_model, model_identity,
                         runtime_record)
from .prompt_args import Prompt, add_prompt_arguments, build_prompts
from .segment_everything import add_everything_arguments

log = logging.getLogger(__name__)

COCO_NAME = "coco.json"
OVERLAY_NAME = "overlay.png"
ID_MAP_NAME = "id_map.png"

EXAMPLES = """examples:
  sam3kit segment bus.jpg --model facebook/sam3 --text "yellow school bus" --overlay
  sam3kit segment photos/ --model ./sam3 -t dog -t cat --format all --out results   # OUT/<path below photos>/
  sam3kit segment "shots/**/*.png" --model sam3.pt --box 40,60,180,220          # exemplar: find all like it
  sam3kit segment bus.jpg --model ./sam3 --point 320,240 --point 100,50,0 --best  # one object from clicks
  sam3kit segment bus.jpg --model ./sam3 -t car --cache ~/.cache/sam3kit          # a second text: no re-encoding
  sam3kit segment bus.jpg --model ./sam3 --everything --overlay                   # every object, no prompt
"""


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser(
        "segment", parents=[common], formatter_class=formatter, epilog=EXAMPLES,
        help="segment images from text, exemplar boxes or clicks, or everything in them",
        description="Segment every instance of a concept (--text, exemplar --box), one object from clicks "
                    "(--point, optionally with its --box), or every object and part without a prompt "
                    "(--everything). Each image is encoded once for all its prompts. "
                    "Outputs go to OUT/<name>/: the image's path below its folder argument without the suffix, "
                    "or the stem of an image given by itself. Instance ids (mask_NNN.png) follow the prompts, then "
                    "the order the Python API returns (not sorted by score).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders (their images) or glob patterns")
    add_recursive_argument(p)
    add_model_argument(p, onnx=True)
    add_prompt_arguments(p)
    add_everything_arguments(p)
    o = p.add_argument_group("outputs")
    add_out_argument(o)
    o.add_argument("-f", "--format", type=parse_formats, default="png,json", metavar="FMT",
                   help="png (mask PNGs), json (COCO RLE in result.json), coco (coco.json per image, and OUT/coco.json "
                        "for a run over folders or several images), all, or a comma list")
    o.add_argument("--overlay", action="store_true", help="also write overlay.png: masks, boxes, ids and scores")
    o.add_argument("--id-map", action="store_true",
                   help="also write id_map.png: 16-bit, 0 background, i+1 where instance i is")
    add_rerun_arguments(o, kind="image")
    add_runtime_arguments(p)
    p.set_defaults(run=run)


def options_record(job: ImageJob, model_id: dict, prompts: list[Prompt], args: argparse.Namespace) -> dict:
    """Everything an image's outputs depend on; matching records mean a re-run would write the same files.
    (``--truncate-text`` is not in it: it changes nothing for texts that fit, and without it a text that does not
    fit stops the command.)"""
    rec = job_record(job.path, model_id, runtime_record(args), kind="image")
    rec.update(prompts=[asdict(p) for p in prompts], threshold=args.threshold, mask_threshold=args.mask_threshold,
               formats=list(args.format), overlay=bool(args.overlay), id_map=bool(getattr(args, "id_map", False)))
    return as_read_back(rec)


# ----------------------------------------------------------------------------- one image
def segment_image(predictor, image, prompts: list[Prompt], *, threshold: float, mask_threshold: float,
                  with_rle: bool, truncate_text: bool = False,
                  stage: Optional[Callable[[str], None]] = None) -> tuple[list[dict], list, list[dict]]:
    """Run every prompt on one (already decoded) image, encoded once.

    ``stage`` (optional) is told what runs: "encoding", then "prompt k/n 'label'".

    Returns:
        records: instance records (``sam3kit.io.writers``) with ids 0..N-1: the prompts in order, each prompt's
            instances in the order of its API result (``index``);
        masks: N (H, W) bool arrays, aligned with ``records``;
        prompt_info: one dict per prompt for ``result.json`` (its inputs and its presence / object score).
    """
    import numpy as np

    from ..io.writers import predict_records, segment_records

    say = stage or (lambda text: None)
    say("encoding")
    predictor.set_image(image)
    records, masks, info = [], [], []
    for k, pr in enumerate(prompts):
        say(f"prompt {k + 1}/{len(prompts)} {pr.label!r}")
        entry = {"kind": pr.kind, "label": pr.label}
        if pr.kind == "everything":
            from . import segment_everything

            recs, found, entry = segment_everything.segment(predictor, image, pr.everything, k, with_rle=with_rle)
        elif pr.kind == "concept":
            kw = {"truncate_text": True} if truncate_text else {}
            res = predictor.segment(text=pr.text, boxes=pr.boxes, box_labels=pr.box_labels, threshold=threshold,
                                    mask_threshold=mask_threshold, **kw)
            recs = segment_records(res, pr.label, k, with_rle=with_rle)
            found = [res.masks[r["index"]] for r in recs]
            entry.update(text=pr.text, boxes=pr.boxes, box_labels=pr.box_labels, presence=float(res.presence),
                         found=len(recs))
        else:
            res = predictor.predict(points=pr.points, point_labels=pr.point_labels, box=pr.boxes,
                                    multimask=pr.multimask)
            keep = None if pr.keep == "all" else ([res.best] if pr.keep == "best" else [int(pr.keep)])
            if not pr.multimask:
                keep = [0]
            recs = predict_records(res, pr.label, k, indices=keep, with_rle=with_rle)
            found = [res.masks[r["index"]] for r in recs]
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
    from ..io.writers import coco_document, id_map, write_id_map_png, write_image_png, write_json, write_mask_png
    from .job_outputs import JobOutputs

    H, W = image.shape[:2]
    formats = set(args.format)
    with_ids = bool(getattr(args, "id_map", False))
    planned = ([f"mask_{r['id']:03d}.png" for r in records] if "png" in formats else []) \
        + ([COCO_NAME] if "coco" in formats else []) + ([ID_MAP_NAME] if with_ids else []) \
        + ([OVERLAY_NAME] if args.overlay else [])
    ident = options.get("image") or {}
    out = JobOutputs.begin(folder, planned, force=bool(args.force),
                           owner={"path": ident.get("path", str(job.path.resolve())), "sha256": ident.get("sha256")})
    if "png" in formats:
        for r, m in zip(records, masks):
            name = f"mask_{r['id']:03d}.png"
            r["mask"] = write_mask_png(folder / name, m, overwrite=out.may_overwrite(name)).name
    if "coco" in formats:
        write_json(folder / COCO_NAME, coco_document(job.path.name, W, H, records),
                   overwrite=out.may_overwrite(COCO_NAME), indent=None)
    if with_ids:
        priority = [r["score"] if r.get("score") is not None else r.get("iou") for r in records]
        write_id_map_png(folder / ID_MAP_NAME, id_map(masks, (H, W), priority),
                         overwrite=out.may_overwrite(ID_MAP_NAME))
    if args.overlay and any(pr.kind == "everything" for pr in prompts):
        from .segment_everything import overlay

        write_image_png(folder / OVERLAY_NAME, overlay(image, records, masks),
                        overwrite=out.may_overwrite(OVERLAY_NAME))
    elif args.overlay:
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
                "order": "instance ids follow the prompts, then each prompt's result order (query order for "
                         "concepts, candidate order for clicks, SAM 1's order for everything: predicted IoU "
                         "decreasing, smaller crops first)",
                "files": planned, "options": options}
    return out.commit(manifest)


# ----------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    from .report import Reporter

    from . import onnx_model

    prompts = build_prompts(args)
    export = onnx_model.is_export(args.model)  # the graphs of 'sam3kit export onnx': no PyTorch
    if export:
        onnx_model.check_flags(args, prompts)
    else:
        apply_threads(args.threads)
    cache_dir = Path(args.cache).expanduser() if args.cache else None
    found, tally = collect_inputs(args.images, args.out, recursive=args.recursive, exclude=[cache_dir],
                                  reserved=[COCO_NAME] if "coco" in args.format else [])
    if cache_dir is not None:
        check_folder(cache_dir, "--cache")
    model_id = onnx_model.identity(args.model, args) if export else model_identity(args.model, args.image_size)
    todo = plan_jobs(found.jobs, lambda job: options_record(job, model_id, prompts, args), tally, force=args.force,
                     quiet=args.quiet, kind="image")
    debug = bool(getattr(args, "debug", False))
    verbose = bool(getattr(args, "verbose", False)) or debug
    with Reporter(len(todo), enabled=False if args.quiet else None) as rep:
        if todo:
            if export:
                predictor = onnx_model.load(args, prompts, rep)
            else:
                predictor = _load_predictor(args, resolve_device(args.device), prompts, cache_dir, rep)
            fingerprint = predictor.fingerprint if export else predictor.model.fingerprint
            with rep.paused():
                todo = settle_model(todo, fingerprint, tally, quiet=args.quiet)
        if todo:
            rep.stage("checking the text prompts")
            check_texts(predictor, prompts, truncate=bool(args.truncate_text))
            encodings = {"cached": 0, "computed": 0}
            run_jobs(todo, lambda p: _segment_one(predictor, p, prompts, args, rep, encodings), tally, debug=debug,
                     verbose=verbose, reporter=rep)
            if cache_dir is not None:
                tally.notes.append(f"encodings: {encodings['cached']} read from the cache, "
                                   f"{encodings['computed']} computed")
    if "coco" in args.format and (found.from_folders or len(found.jobs) > 1):
        _write_merged_coco(tally, found.jobs, force=bool(args.force))
    return finish(tally, kind="image", unit="mask")


def check_texts(predictor, prompts: list[Prompt], *, truncate: bool) -> None:
    """Encode every ``--text`` once before the first image: an overlong text (``InputError``) stops the command
    here, once, instead of failing every image; with ``truncate`` it is cut, with one warning. The encodings are
    kept by the predictor's text cache for the images (an ``ImagePredictor``'s, or an ``OnnxPredictor``'s)."""
    for pr in prompts:
        if pr.kind == "concept" and pr.text is not None:
            if hasattr(predictor, "texts"):
                predictor.texts.get(pr.text, truncate=truncate)
            else:
                predictor.text_features(pr.text, truncate=truncate)


def _segment_one(predictor, p: PlannedJob, prompts: list[Prompt], args: argparse.Namespace, rep,
                 encodings: dict) -> tuple[int, Optional[str]]:
    """Decode, segment and write one image; returns its mask count and its table (None with ``--quiet``)."""
    import numpy as np

    from ..io.image import load_image
    from .report import image_table

    name = p.job.path.name
    rep.stage(f"{name}: decoding")
    image = np.require(load_image(p.job.path), requirements="W")  # torch warns on read-only arrays
    cache = getattr(predictor, "cache", None)  # an OnnxPredictor has none
    hits = cache.hits if cache is not None else 0
    records, masks, info = segment_image(predictor, image, prompts, threshold=args.threshold,
                                         mask_threshold=args.mask_threshold,
                                         with_rle=bool({"json", "coco"} & set(args.format)),
                                         truncate_text=bool(args.truncate_text),
                                         stage=lambda text: rep.stage(f"{name}: {text}"))
    if cache is not None and cache.hits > hits:
        encodings["cached"] += 1
        log.info("%s: encoding read from the cache", p.job.path)
    else:
        encodings["computed"] += 1
    rep.stage(f"{name}: writing")
    write_outputs(p.folder, p.job, image, records, masks, info, prompts, p.options, args)
    if args.quiet:
        table = None
    elif info and info[0]["kind"] == "everything":
        from .segment_everything import table as everything_table

        table = everything_table(str(p.job.path), image.shape[1], image.shape[0], records, info[0])
    else:
        table = image_table(str(p.job.path), image.shape[1], image.shape[0], info, records)
    return len(records), table


def _write_merged_coco(tally: Tally, jobs: list[ImageJob], *, force: bool) -> None:
    """``OUT/coco.json``: the per-image COCO files of the run's finished images (done now or before) in input
    order, as one dataset. It replaces an earlier merged file of sam3kit; any other file there is kept unless
    ``force`` (an error line, counted as a failure)."""
    import json

    from ..errors import Sam3Error
    from ..io.writers import json_text, merge_coco, write_text
    from .exit_codes import report_error

    finished = {p.job.path: p for p in tally.finished}
    docs, names = [], []
    for job in jobs:
        p = finished.get(job.path)
        if p is None:
            continue
        try:
            doc = json.loads((p.folder / COCO_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("%s is missing or unreadable: %s is left out of %s", p.folder / COCO_NAME, job.path,
                        tally.out_root / COCO_NAME)
            continue
        if isinstance(doc, dict) and len(doc.get("images", [])) == 1:
            docs.append(doc)
            names.append(job.file_name)
    if not docs:
        return
    path = tally.out_root / COCO_NAME
    try:
        if path.exists() and not force and not _is_merged_coco(path):
            from ..errors import OutputError

            raise OutputError(f"{path} exists and was not written by sam3kit; pass --force to replace it, or "
                              "choose another --out")
        text = json_text(merge_coco(docs, names), indent=None) + "\n"
        if not (path.is_file() and path.read_bytes() == text.encode("utf-8")):  # a re-run changes nothing
            write_text(path, text, overwrite=True)
    except Sam3Error as e:
        report_error(e, debug=False)
        tally.user_failed.append(str(path))
        return
    tally.notes.append(f"{len(docs)} image{'s' if len(docs) != 1 else ''} in {path}")


def _is_merged_coco(path: Path) -> bool:
    import json

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and (doc.get("info") or {}).get("description") == "sam3kit segmentation"


def _load_predictor(args: argparse.Namespace, device: str, prompts: list[Prompt], cache_dir: Optional[Path],
                    reporter=None):
    """The model of ``--model`` (``model_args.load_model``) in an ``ImagePredictor`` (with the ``--cache``
    directory, if given); ``--point`` prompts need the tracker weights (``InputError`` for a detector-only
    checkpoint)."""
    import sam3kit

    from ..errors import InputError

    model = load_model(args, device, reporter)
    if any(p.kind in ("interactive", "everything") for p in prompts) and not model.has_tracker:
        what = "--everything needs" if prompts[0].kind == "everything" else "--point prompts need"
        raise InputError(f"{args.model} is detector-only: {what} the tracker weights "
                         "(the full facebook/sam3 checkpoint)")
    # each image is seen once per run: one encoding in memory is enough; the directory keeps them across runs
    cache = sam3kit.EncodingCache(max_items=1, directory=cache_dir) if cache_dir is not None else None
    return sam3kit.ImagePredictor(model, cache=cache)
