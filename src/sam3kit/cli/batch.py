"""``sam3kit batch``: concept segmentation of many images into a resumable job folder, on this machine or on Ray.

``sam3kit batch INPUT ... --model SRC --text T [--text T2 ...] --out DIR`` runs ``sam3kit.batch.run``: the images
of the inputs (folders, glob patterns, lists of paths, Parquet / CSV tables with a path column) are split into
shards of ``--shard-size`` images, each written as ``DIR/shards/shard-NNNNN.parquet`` once complete, and
``DIR/manifest.json`` records the job. Running the same command again computes only the shards that are missing
(after a kill, a crash, a lost node); a folder holding a job with another model, other options or other inputs is
refused unless ``--force``. ``sam3kit batch merge DIR --coco out.json`` writes the job as one COCO file.

Bad images do not stop the job: each gives a row with its error. The exit code is 0 when the job is complete
(rows with errors included: the summary counts them), 2 for a user mistake (bad option, missing model, a folder of
another job, the ray extra missing), 130 when interrupted (finished shards are kept).
"""

from __future__ import annotations

import argparse
import sys

from .inputs import parse_probability

EXAMPLES = """examples:
  sam3kit batch photos/ --model facebook/sam3 -t dog -t cat --out labels/         # resumable: run it again
  sam3kit batch "shots/**/*.jpg" --model ./sam3 -t "traffic light" --out tl/ --batch-size 8 --device cuda
  sam3kit batch paths.txt --model ./sam3 -t person --out people/ --engine ray --workers 8   # RAY_ADDRESS=...
  sam3kit batch index.parquet --path-column file --model ./sam3 --exemplars boxes.json --out ex/
  sam3kit batch merge labels/ --coco labels.json                                   # one COCO file
"""

USAGE = ("sam3kit batch INPUT [INPUT ...] --model SRC (--text T [--text T2 ...] | --exemplars FILE) --out DIR "
         "[options]\n       sam3kit batch merge DIR --coco FILE [--partial] [--force]")


def add_parser(sub, common, formatter) -> None:
    from .model_args import add_model_argument, add_runtime_arguments

    p = sub.add_parser(
        "batch", parents=[common], formatter_class=formatter, epilog=EXAMPLES, usage=USAGE,
        help="segment many images into a resumable job folder (Parquet shards), locally or on Ray",
        description="Find every instance of each --text (and/or --exemplars boxes) in many images, each image encoded "
                    "once for all prompts. Rows go to DIR/shards/*.parquet (one per instance, one per image and "
                    "prompt that found nothing, one per failure), written shard by shard; running the same command "
                    "again finishes an interrupted job. 'sam3kit batch merge DIR --coco FILE' writes one COCO file.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="folders (searched recursively), glob patterns, lists of paths (.txt), tables (.parquet, "
                        ".csv) with a column of paths, or image files; 'merge DIR' merges a finished job")
    add_model_argument(p)
    g = p.add_argument_group("prompts")
    g.add_argument("-t", "--text", action="append", metavar="TEXT",
                   help="noun phrase whose every instance is found (repeatable: one concept each)")
    g.add_argument("--exemplars", metavar="FILE",
                   help="JSON exemplar boxes: a list [[x1,y1,x2,y2(,label)], ...] for every image, or an object "
                        "mapping image paths to their boxes")
    g.add_argument("--threshold", type=parse_probability, default=0.5,
                   help="keep instances whose score (class x presence) is above this")
    g.add_argument("--mask-threshold", type=parse_probability, default=0.5,
                   help="mask pixels whose probability is above this")
    g.add_argument("--truncate-text", action="store_true",
                   help="cut a --text longer than the model's context (32 tokens) as the official model does")
    j = p.add_argument_group("job")
    j.add_argument("-o", "--out", metavar="DIR", help="the job folder (manifest.json, shards/); required")
    j.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: Ray Data actors on the cluster of RAY_ADDRESS, else a local Ray "
                        "instance (needs sam3kit[ray])")
    j.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="model workers (local: threads, one model per GPU with several; ray: actors). Default: 1 "
                        "locally; on Ray one per GPU, else one per node")
    j.add_argument("--batch-size", type=_positive, default=None, metavar="B",
                   help="images encoded together (default: 1 on a CPU, 4 on a GPU)")
    j.add_argument("--shard-size", type=_positive, default=None, metavar="N",
                   help="images per shard, the unit written at once and skipped on a re-run (default: the earlier "
                        "run's, else 256)")
    j.add_argument("--path-column", default="path", metavar="NAME", help="the column of paths of a table input")
    j.add_argument("--force", action="store_true",
                   help="replace a job in DIR that differs (model, options, inputs, shard size); shards that are "
                        "unchanged are kept")
    j.add_argument("-q", "--quiet", action="store_true", help="no progress bar, only errors and the summary")
    m = p.add_argument_group("merge (sam3kit batch merge DIR --coco FILE)")
    m.add_argument("--coco", metavar="FILE", help="the COCO file to write")
    m.add_argument("--partial", action="store_true", help="merge the finished shards of an unfinished job")
    add_runtime_arguments(p, cache=False)
    p.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1")
    return v


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError

    if args.inputs[0] == "merge":
        return _merge(args)
    if args.coco or args.partial:
        raise InputError("--coco and --partial belong to 'sam3kit batch merge DIR --coco FILE'")
    if not args.out:
        raise InputError("give the job folder: --out DIR (a re-run with the same DIR finishes an interrupted job)")
    from ..batch import BatchOptions, run as run_batch

    options = BatchOptions(
        texts=tuple(args.text or ()), exemplars=args.exemplars, threshold=args.threshold,
        mask_threshold=args.mask_threshold, truncate_text=bool(args.truncate_text), dtype=args.dtype,
        image_size=args.image_size, fast=args.fast, engine=args.engine, workers=args.workers,
        batch_size=args.batch_size, shard_size=args.shard_size, device=args.device, threads=args.threads,
        force=bool(args.force))
    s = run_batch(args.inputs, args.model, args.out, options, path_column=args.path_column,
                  progress=False if args.quiet else None)
    where = ", ".join(f"{k} {v}" for k, v in (("workers", s.placement.get("workers")),
                                              ("device", s.placement.get("device")),
                                              ("batch", s.placement.get("batch_size"))) if v is not None)
    parts = [f"{s.written} shard{'s' if s.written != 1 else ''} written ({s.processed} images, {s.instances} "
             f"instances, {s.errors} error row{'s' if s.errors != 1 else ''})"]
    if s.kept:
        parts.append(f"{s.kept} kept from an earlier run")
    rate = f", {s.images_per_second:.2f} images/s" if s.processed else ""
    print(f"sam3kit batch: {s.images} images in {s.shards} shard{'s' if s.shards != 1 else ''} -> {s.out}: "
          f"{'; '.join(parts)}; {s.seconds:.1f} s{rate} ({s.engine}{', ' + where if where else ''})", flush=True)
    if s.errors:
        sys.stderr.write(f"sam3kit: warning: {s.errors} image{'s or prompts' if s.errors != 1 else ' or prompt'} "
                         "failed (rows with an 'error' in the output), e.g.:\n")
        for line in s.error_samples[:3]:
            sys.stderr.write(f"  {line}\n")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from ..batch import merge
    from ..errors import InputError

    rest = args.inputs[1:]
    if len(rest) != 1:
        raise InputError(f"sam3kit batch merge takes one job folder, got {len(rest)}: sam3kit batch merge DIR "
                         "--coco FILE")
    if not args.coco:
        raise InputError("sam3kit batch merge needs --coco FILE (the COCO file to write)")
    if args.text or args.exemplars or args.out:
        raise InputError("sam3kit batch merge reads the job's own options: --text, --exemplars and --out do not "
                         "apply (give the job folder as DIR)")
    m = merge(rest[0], args.coco, partial=bool(args.partial), force=bool(args.force))
    notes = []
    if m.undecoded:
        notes.append(f"{m.undecoded} image{'s' if m.undecoded != 1 else ''} that could not be decoded left out")
    if m.missing_shards:
        notes.append(f"{m.missing_shards} unfinished shard{'s' if m.missing_shards != 1 else ''} left out "
                     "(--partial)")
    print(f"sam3kit batch merge: {m.images} images, {m.annotations} annotations, {m.categories} "
          f"categor{'ies' if m.categories != 1 else 'y'} -> {m.path}" + "".join(f"; {n}" for n in notes), flush=True)
    return 0
