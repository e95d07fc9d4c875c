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
interrupted run (listed in its ``.sam3kit-partial.json``) are overwritten without it.

Prompts: ``--text`` (repeatable: one concept each) and/or exemplar ``--box`` find every instance; ``--point``
(with at most one ``--box``, the object's box) gives one object's masks. Mixing ``--text`` and ``--point`` is an
error: they answer different questions. Mask choice for ``--point``: ``--mask-index i`` or ``--best`` keep one of
the three candidate masks; by default a single click (ambiguous: whole, part or sub-part) keeps all three, and
several clicks or a box (unambiguous) give the one single-output mask, as SAM recommends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from .inputs import ImageJob, expand_images, parse_box, parse_formats, parse_point

RESULT_NAME = "result.json"
COCO_NAME = "coco.json"
OVERLAY_NAME = "overlay.png"
PARTIAL_NAME = ".sam3kit-partial.json"
MANIFEST_VERSION = 1

EXAMPLES = """examples:
  sam3kit segment bus.jpg --model facebook/sam3 --text "yellow school bus" --overlay
  sam3kit segment photos/ --model ./sam3 -t dog -t cat --format all --out results
  sam3kit segment "shots/**/*.png" --model sam3.pt --box 40,60,180,220          # exemplar: find all like it
  sam3kit segment bus.jpg --model ./sam3 --point 320,240 --point 100,50,0 --best  # one object from clicks
"""


@dataclass(frozen=True)
class Prompt:
    """One prompt applied to every image: a concept (text and/or exemplar boxes) or one interactive object."""

    kind: str  # "concept" or "interactive"
    label: str
    text: Optional[str] = None
    boxes: Optional[list] = None  # concept: [[x1, y1, x2, y2], ...]; interactive: one box or None
    box_labels: Optional[list] = None
    points: Optional[list] = None
    point_labels: Optional[list] = None
    multimask: bool = True
    keep: str = "all"  # interactive: "all", "best" or the mask index as a string


def add_parser(sub, common, formatter) -> None:
    p = sub.add_parser(
        "segment", parents=[common], formatter_class=formatter, epilog=EXAMPLES,
        help="segment images from text, exemplar boxes or clicks",
        description="Segment every instance of a concept (--text, exemplar --box) or one object from clicks "
                    "(--point, optionally with its --box). Each image is encoded once for all its prompts. "
                    "Outputs go to OUT/<image stem>/.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders (their images) or glob patterns")
    p.add_argument("-m", "--model", default="facebook/sam3",
                   help="checkpoint: a folder, model.safetensors, sam3.pt or a Hugging Face Hub id")
    g = p.add_argument_group("prompts")
    g.add_argument("-t", "--text", action="append", metavar="TEXT",
                   help="noun phrase whose every instance is found (repeatable: one concept each)")
    g.add_argument("-b", "--box", action="append", type=parse_box, metavar="X1,Y1,X2,Y2[,L]",
                   help="pixel box (repeatable). Without --point: an exemplar, label 1 positive / 0 negative; "
                        "with --point: the object's box")
    g.add_argument("-p", "--point", action="append", type=parse_point, metavar="X,Y[,L]",
                   help="pixel click on one object (repeatable), label 1 foreground / 0 background")
    pick = g.add_mutually_exclusive_group()
    pick.add_argument("--mask-index", type=int, choices=(0, 1, 2),
                      help="with --point: keep this one of the three candidate masks "
                           "(default: all three for one click, the single-output mask otherwise)")
    pick.add_argument("--best", action="store_true", help="with --point: keep the mask of highest predicted IoU")
    g.add_argument("--threshold", type=_probability, default=0.5,
                   help="concept prompts: keep instances whose score (class x presence) is above this")
    g.add_argument("--mask-threshold", type=_probability, default=0.5,
                   help="concept prompts: mask pixels whose probability is above this")
    o = p.add_argument_group("outputs")
    o.add_argument("-o", "--out", default="sam3kit_out", metavar="DIR", help="output folder")
    o.add_argument("-f", "--format", type=parse_formats, default="png,json", metavar="FMT",
                   help="png (mask PNGs), json (COCO RLE in result.json), coco (coco.json), all, or a comma list")
    o.add_argument("--overlay", action="store_true", help="also write overlay.png: masks, boxes, ids and scores")
    o.add_argument("--force", action="store_true", help="redo images whose outputs exist and overwrite them")
    o.add_argument("-q", "--quiet", action="store_true", help="no per-image table, only errors and the summary")
    r = p.add_argument_group("runtime")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps; auto = cuda if available, else cpu")
    r.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16"),
                   help="weights and compute dtype (fp16/bf16 are meant for GPUs)")
    r.add_argument("--fast", default="none", choices=("none", "int8"),
                   help="int8: int8 Linear layers in the image encoder on the CPU (faster, slightly less exact; "
                        "needs sam3kit[fast]); none: the exact model")
    r.add_argument("--image-size", type=int, default=None, metavar="N",
                   help="run the model at N x N pixels instead of the checkpoint's 1008 (a multiple of 336; "
                        "faster, less accurate)")
    p.set_defaults(run=run)


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in [0, 1]") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 1]")
    return v


# ----------------------------------------------------------------------------- prompts
def build_prompts(args: argparse.Namespace) -> list[Prompt]:
    """The prompts every image gets, checked for combinations that have no meaning (``InputError``)."""
    from ..errors import InputError

    texts = list(dict.fromkeys(t for t in (args.text or [])))
    boxes = list(args.box or [])
    points = list(args.point or [])
    if any(not t.strip() for t in texts):
        raise InputError("--text is empty: give a noun phrase such as 'red car'")
    if not (texts or boxes or points):
        raise InputError("no prompt: give --text, --box (exemplar) or --point")
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


# ----------------------------------------------------------------------------- identity of a run
def resolve_device(name: str) -> str:
    import torch

    from ..errors import InputError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}: use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available here (see 'sam3kit env'); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"--device {name}: MPS is not available here; use --device cpu")
    return name


def model_identity(source: str) -> dict[str, Any]:
    """What identifies the weights for the skip check: path, size and time of the checkpoint's files (a folder's
    top-level files; a file and the config.json beside it); a Hub id as given."""
    p = Path(source).expanduser()
    if not p.exists():
        return {"source": source}
    if p.is_dir():
        paths = sorted(f for f in p.iterdir() if f.is_file())
    else:
        paths = [p] + ([p.parent / "config.json"] if (p.parent / "config.json").is_file() else [])
    return {"source": str(p.resolve()),
            "files": [{"name": f.name, "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in paths]}


def options_record(job: ImageJob, model_id: dict, prompts: list[Prompt], args: argparse.Namespace) -> dict:
    """Everything an image's outputs depend on; equal records mean a re-run would write the same files."""
    from .. import __version__

    st = job.path.stat()
    rec = {"sam3kit": __version__, "manifest": MANIFEST_VERSION,
           "image": {"path": str(job.path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns},
           "model": model_id, "dtype": args.dtype, "fast": args.fast, "image_size": args.image_size,
           "prompts": [asdict(p) for p in prompts],
           "threshold": args.threshold, "mask_threshold": args.mask_threshold,
           "formats": list(args.format), "overlay": bool(args.overlay)}
    return json.loads(json.dumps(rec))  # the form it has once read back from result.json


def read_manifest(folder: Path) -> Optional[dict]:
    try:
        d = json.loads((folder / RESULT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def is_complete(folder: Path, options: dict) -> bool:
    """True when ``folder`` holds the outputs of a finished run with exactly these options."""
    m = read_manifest(folder)
    if m is None or m.get("options") != options:
        return False
    files = m.get("files")
    return isinstance(files, list) and all((folder / f).is_file() for f in files if isinstance(f, str))


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
    """Write one image's files, ``result.json`` last; returns the names written.

    While writing, ``.sam3kit-partial.json`` lists the files this run (or an interrupted earlier one) owns: a
    re-run may overwrite those without ``--force``; any other existing file is refused without it. Files of the
    earlier run that this run does not write again are removed.
    """
    from ..errors import OutputError
    from ..io.overlay import overlay_records
    from ..io.writers import coco_document, write_image_png, write_json, write_mask_png

    H, W = image.shape[:2]
    formats, force = set(args.format), bool(args.force)
    planned = ([f"mask_{r['id']:03d}.png" for r in records] if "png" in formats else []) \
        + ([COCO_NAME] if "coco" in formats else []) + ([OVERLAY_NAME] if args.overlay else [])
    owned = set(_listed(folder / PARTIAL_NAME)) | (set(_listed(folder / RESULT_NAME)) if force else set())
    if not force:
        clash = [n for n in planned + [RESULT_NAME] if (folder / n).exists() and n not in owned]
        if clash:
            raise OutputError(f"{folder / clash[0]} exists already; pass --force to overwrite, or choose another --out")
    write_json(folder / PARTIAL_NAME, {"files": sorted(owned | set(planned))}, overwrite=True)
    if force and (folder / RESULT_NAME).exists():
        (folder / RESULT_NAME).unlink()  # the folder is incomplete until the new result.json is written
    may = lambda name: force or name in owned  # noqa: E731
    if "png" in formats:
        for r, m in zip(records, masks):
            name = f"mask_{r['id']:03d}.png"
            r["mask"] = write_mask_png(folder / name, m, overwrite=may(name)).name
    if "coco" in formats:
        write_json(folder / COCO_NAME, coco_document(job.path.name, W, H, records), overwrite=may(COCO_NAME),
                   indent=None)
    if args.overlay:
        pts = [p for pr in prompts if pr.points for p in pr.points]
        labels = [lab for pr in prompts if pr.point_labels for lab in pr.point_labels]
        pboxes = [b for pr in prompts if pr.boxes for b in (pr.boxes if pr.kind == "concept" else [pr.boxes])]
        im = overlay_records(image, records, masks, points=pts or None, point_labels=labels or None,
                             prompt_boxes=pboxes or None)
        write_image_png(folder / OVERLAY_NAME, im, overwrite=may(OVERLAY_NAME))
    instances = []
    for r in records:
        r = dict(r)
        if "json" not in formats:
            r.pop("rle", None)
        instances.append(r)
    manifest = {"sam3kit": options["sam3kit"], "image": {"path": str(job.path), "width": W, "height": H},
                "model": options["model"].get("source"), "prompts": prompt_info, "instances": instances,
                "files": planned, "options": options}
    write_json(folder / RESULT_NAME, manifest, overwrite=force)
    for name in owned - set(planned):  # the earlier run's files that this run did not write again
        (folder / name).unlink(missing_ok=True)
    (folder / PARTIAL_NAME).unlink(missing_ok=True)
    return planned + [RESULT_NAME]


def _listed(path: Path) -> list[str]:
    """Plain file names listed under "files" in a JSON file of ours (none if absent or unreadable)."""
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files or [] if isinstance(f, str) and f == Path(f).name and f not in ("", ".", "..")
            and f != RESULT_NAME]


# ----------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import InputError, OutputError

    from ..io.image import load_image
    from . import report_error
    from .report import Progress, image_table

    started = time.monotonic()
    debug = bool(getattr(args, "debug", False))
    prompts = build_prompts(args)
    jobs, problems = expand_images(args.images)
    if not jobs:
        raise InputError("; ".join(msg for _, msg in problems) or "no images given")
    out_root = Path(args.out).expanduser()
    if out_root.exists() and not out_root.is_dir():
        raise OutputError(f"--out {out_root} is a file, not a folder")
    model_id = model_identity(args.model)
    user_failed: list[str] = [spec for spec, _ in problems]
    bug_failed: list[str] = []
    for _, msg in problems:
        sys.stderr.write(f"sam3kit: error: {msg}\n")

    todo, skipped = [], 0
    for job in jobs:
        try:
            opts = options_record(job, model_id, prompts, args)
        except OSError as e:
            sys.stderr.write(f"sam3kit: error: {job.path}: {e.strerror or e}\n")
            user_failed.append(str(job.path))
            continue
        folder = out_root / job.name
        if not args.force and is_complete(folder, opts):
            skipped += 1
            if not args.quiet:
                print(f"{job.path}: done already in {folder} (--force to redo)")
            continue
        if not args.force and read_manifest(folder) is not None:
            sys.stderr.write(
                f"sam3kit: error: {job.path}: {folder} holds outputs of an earlier run that does not match this one "
                "(other prompts, options, model or image, or files missing); pass --force to redo it, or choose "
                "another --out\n")
            user_failed.append(str(job.path))
            continue
        todo.append((job, opts, folder))

    n_masks = done = 0
    if todo:
        predictor = _load_predictor(args, resolve_device(args.device), prompts)
        progress = Progress(len(todo))
        for job, opts, folder in todo:
            progress.show(job.path.name)
            try:
                image = np.require(load_image(job.path), requirements="W")  # torch warns on read-only arrays
                records, masks, info = segment_image(
                    predictor, image, prompts, threshold=args.threshold, mask_threshold=args.mask_threshold,
                    with_rle=bool({"json", "coco"} & set(args.format)))
                write_outputs(folder, job, image, records, masks, info, prompts, opts, args)
                n_masks += len(records)
                done += 1
                progress.clear()
                if not args.quiet:
                    print(image_table(str(job.path), image.shape[1], image.shape[0], info, records), flush=True)
            except Exception as e:  # one image failing must not stop the others
                progress.clear()
                msg_path = "" if str(job.path) in str(e) else f"{job.path}: "
                code = report_error(e, debug, prefix=msg_path)
                (user_failed if code == 2 else bug_failed).append(str(job.path))
            progress.advance()
        progress.clear()

    total = len(jobs) + len(problems)
    failed = len(user_failed) + len(bug_failed)
    parts = [f"{done} done"]
    parts += [f"{skipped} skipped (complete)"] if skipped else []
    parts += [f"{failed} failed"] if failed else []
    elapsed = time.monotonic() - started
    print(f"sam3kit: {total} image{'s' if total != 1 else ''}: {', '.join(parts)}; {n_masks} mask"
          f"{'s' if n_masks != 1 else ''} -> {out_root} ({elapsed:.1f} s)", flush=True)
    if failed:
        sys.stderr.write("failed: " + ", ".join(user_failed + bug_failed) + "\n")
    return 1 if bug_failed else (2 if user_failed else 0)


def _load_predictor(args: argparse.Namespace, device: str, prompts: list[Prompt]):
    import sam3kit
    from ..errors import InputError

    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write(f"loading {args.model} on {device} ({args.dtype}) ...\n")
    try:
        model = sam3kit.load(args.model, device=device, dtype=args.dtype, image_size=args.image_size,
                             fast=None if args.fast == "none" else args.fast)
    except (ValueError, ImportError) as e:  # a bad --image-size, or --fast without its extra installed
        raise InputError(str(e)) from e
    if any(p.kind == "interactive" for p in prompts) and not model.has_tracker:
        raise InputError(f"{args.model} is detector-only: --point prompts need the tracker weights "
                         "(the full facebook/sam3 checkpoint)")
    return sam3kit.ImagePredictor(model)
