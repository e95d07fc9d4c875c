"""(h) Batch segmentation throughput: images per second through ``sam3kit.batch.run``, the local engine against
the ray engine at the same number of workers, and the per-image costs behind them.

A folder of ``--images`` JPEG photos of ``--image-px`` (random smooth content) is segmented with ``--prompts``
texts on a random-weight checkpoint (``benchmarks/make_checkpoint.py``; ``--config tiny`` for the tiny one, which
runs in seconds). For each worker count of ``--workers``, each repetition runs the local engine, then the ray
engine, each into a fresh job folder (``--shard-size`` images per shard), on one local Ray instance started once
with every core (``ray.init(num_cpus=cores)``; ``RAY_ADDRESS`` is not used). Timed per run:

- ``per_image_s``: the steady state, from the moment the first shard file is written to the last one, divided by
  the images of the shards in between (model loading, Ray's actor start and the first shard are left out);
- ``wall_s``: the whole ``run`` call (what a user waits for a job of this size), and ``startup_s``, the time to
  the first shard.

``ray_overhead`` is ray's ``per_image_s`` over local's at the same workers, minus 1 (target: below 0.10), per
repetition (median reported). A Ray actor reserves ``cores // workers`` CPUs and uses that many torch threads;
the local engine's workers share torch's threads (``--threads``, default torch's choice).

Per-image costs (``cost_per_image_s``, one worker thread, image after image, ``--cost-images`` images): decoding
the file, the ViT (one encoding per image), the prompts (the detector on that encoding for all texts, and the masks
upsampled to the image's size), and the rows (mask run-length encoding, the Arrow table). Decoding and rows run in
the worker's thread pool beside the model, so a worker's rate is about 1 / (ViT + prompts) while they stay below
it.

    python benchmarks/bench_batch.py [--config tiny] [--images 256] [--workers 1,2] [--reps 1]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

TARGET_OVERHEAD = 0.10
TEXTS = ("a dog", "a red car", "a person", "a tree")


def make_images(folder: Path, n: int, width: int, height: int, seed: int) -> Path:
    """``n`` JPEG photos of ``width`` x ``height``: a smooth gradient and a few discs (quality 90)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, int(rng.integers(0, 255)))], -1)
        for _ in range(4):
            cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(10, max(11, height // 4))
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
        Image.fromarray(img.astype(np.uint8)).save(folder / f"photo{i:05d}.jpg", quality=90)
    return folder


def checkpoint(config: str) -> Path:
    import make_checkpoint

    return make_checkpoint.make(config, common.BENCH_DIR / f"sam3-random-{config}")


def timed_run(images: Path, ckpt: Path, options, out: Path) -> dict:
    from sam3kit.batch import run

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    marks: list[tuple[float, int]] = []
    s = run(images, ckpt, out, options, progress=False,
            on_shard=lambda st: marks.append((time.perf_counter() - t0, st.images)))
    wall = time.perf_counter() - t0
    if len(marks) < 3:
        raise SystemExit(f"only {len(marks)} shards: give more --images or a smaller --shard-size")
    per_image = (marks[-1][0] - marks[0][0]) / sum(n for _, n in marks[1:])
    return {"per_image_s": per_image, "wall_s": wall, "startup_s": marks[0][0], "instances": s.instances,
            "images": s.processed, "placement": s.placement}


def per_image_costs(ckpt: Path, images: Path, n: int, texts: tuple[str, ...], threshold: float,
                    threads) -> dict:
    """Median seconds per image of each stage, one worker in this process."""
    import sam3kit
    from sam3kit.batch.inputs import collect
    from sam3kit.batch.plan import Unit
    from sam3kit.batch.worker import Segmenter, WorkerSpec, decode_unit, unit_rows

    model = sam3kit.load(ckpt)
    spec = WorkerSpec(model=str(ckpt), fingerprint=None, device="cpu", texts=texts, threshold=threshold,
                      threads=threads)
    seg = Segmenter(model, spec)
    vit_s: list[float] = []
    trunk = model.image_trunk

    def timed_trunk(px):
        t = time.perf_counter()
        out = trunk(px)
        vit_s.append(time.perf_counter() - t)
        return out

    model.image_trunk = timed_trunk
    found = collect([str(images)]).images[: n + 1]
    costs = {"decode": [], "vit": [], "prompts": [], "rows": []}
    for k, im in enumerate(found):
        unit = Unit(0, (im,), (None,))
        t = time.perf_counter()
        dec = decode_unit(unit)
        t1 = time.perf_counter()
        inf = seg.infer(dec)
        t2 = time.perf_counter()
        unit_rows(inf)
        t3 = time.perf_counter()
        if k == 0:  # warm-up
            vit_s.clear()
            continue
        costs["decode"].append(t1 - t)
        costs["vit"].append(vit_s[-1])
        costs["prompts"].append(t2 - t1 - vit_s[-1])
        costs["rows"].append(t3 - t2)
    model.image_trunk = trunk
    return {k: statistics.median(v) for k, v in costs.items()}


def main(argv=None) -> dict:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=None, help="images in the job (default: 256 tiny, 12 released)")
    p.add_argument("--image-px", default="640x480", help="photo size WxH (default: 640x480)")
    p.add_argument("--prompts", type=int, default=2, help=f"texts per image, at most {len(TEXTS)} (default: 2)")
    p.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default: 1,2)")
    p.add_argument("--batch-size", type=int, default=1, help="images encoded together (default: 1)")
    p.add_argument("--shard-size", type=int, default=None, help="images per shard (default: 32 tiny, 2 released)")
    p.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: 0.0 tiny, so every query is an instance and the rows cost what "
                        "they would with many instances; 0.5 released)")
    p.add_argument("--cost-images", type=int, default=None, help="images of the per-stage costs (default: 8 / 2)")
    p.add_argument("--ray-store-mb", type=int, default=None,
                   help="object store of the local Ray instance in MB (default: Ray's, 30%% of the memory)")
    args = p.parse_args(argv)
    args.reps = max(1, args.reps)
    tiny = args.config == "tiny"
    n = args.images or (256 if tiny else 12)
    shard = args.shard_size or (32 if tiny else 2)
    threshold = args.threshold if args.threshold is not None else (0.0 if tiny else 0.5)
    width, height = (int(v) for v in args.image_px.lower().split("x"))
    workers = [int(w) for w in args.workers.split(",") if w]
    texts = TEXTS[: args.prompts]
    common.setup(args)

    import ray

    from sam3kit.batch import BatchOptions

    ckpt = checkpoint(args.config)
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        images = make_images(tmp / "images", n, width, height, args.seed)
        env = common.environment()
        env["load_avg_1m_start"] = common.wait_for_quiet(args.max_load, args.wait_timeout)
        cores = os.cpu_count() or 1
        os.environ.pop("RAY_ADDRESS", None)
        store = {"object_store_memory": args.ray_store_mb * 2**20} if args.ray_store_mb else {}
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="warning", **store)
        runs: dict[str, list[dict]] = {}
        for w in workers:
            for _ in range(args.reps):
                for engine in ("local", "ray"):
                    opts = BatchOptions(texts=texts, threshold=threshold, engine=engine, workers=w,
                                        batch_size=args.batch_size, shard_size=shard, threads=args.threads)
                    r = timed_run(images, ckpt, opts, tmp / f"out_{engine}_{w}")
                    runs.setdefault(f"{engine}_w{w}", []).append(r)
                    print(f"  {engine} workers={w}: {1 / r['per_image_s']:.2f} images/s steady, "
                          f"wall {r['wall_s']:.1f} s", file=sys.stderr, flush=True)
        ray.shutdown()
        # in a worker thread, as the engines run the model (the main thread's first torch call sets up its own
        # intra-op pool; tiny models run several times slower there on a busy 2-core machine)
        with ThreadPoolExecutor(1) as pool:
            costs = pool.submit(per_image_costs, ckpt, images, args.cost_images or (8 if tiny else 2), texts,
                                threshold, args.threads).result()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    timings = {k: common.stats([r["per_image_s"] for r in v]) for k, v in runs.items()}
    overhead = {str(w): statistics.median(b["per_image_s"] / a["per_image_s"] - 1
                                          for a, b in zip(runs[f"local_w{w}"], runs[f"ray_w{w}"])) for w in workers}
    per_image = costs["vit"] + costs["prompts"]
    record = {
        "bench": "h_batch", "config": args.config, **env, "load_avg_1m_end": common.load_average(),
        "dtype": "float32", "timings": timings, "ratio_median": overhead[str(workers[0])] + 1,
        "ratio_paired": {k: v + 1 for k, v in overhead.items()}, "target_ratio": 1 + TARGET_OVERHEAD,
        "target_met": all(v < TARGET_OVERHEAD for v in overhead.values()),
        "accuracy": {"note": "same rows on both engines: tests/batch/test_batch_ray.py"},
        "peak_rss_mb_process": common.peak_rss_mb(),
        "ray_overhead": overhead,
        "images_per_s": {k: 1 / v["median_s"] for k, v in timings.items()},
        "wall_s": {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()},
        "startup_s": {k: statistics.median(r["startup_s"] for r in v) for k, v in runs.items()},
        "cost_per_image_s": costs,
        "million_images_days_one_worker": 1e6 * per_image / 86400,
        "images": n, "image_px": [width, height], "prompts": len(texts), "batch_size": args.batch_size,
        "shard_size": shard, "threshold": threshold, "ray_cpus": cores,
        "instances_per_image": runs[f"local_w{workers[0]}"][0]["instances"] / n,
        "placements": {k: v[0]["placement"] for k, v in runs.items()}, "ray": ray.__version__, "note": args.note,
    }
    common.append(args.out, record)
    return record


if __name__ == "__main__":
    main()
