"""Batch segmentation at scale: every image of a folder, pattern, list or table, every prompt, resumable.

    from sam3kit.batch import BatchOptions, run, merge
    summary = run("photos/", "facebook/sam3", "labels/", BatchOptions(texts=("dog", "cat"), threshold=0.5))
    merge("labels/", "labels.coco.json")

``run`` splits the images into deterministic shards (``plan.py``), skips the shards an earlier run finished
(``job.py``), and computes the others on an engine: ``local`` (this process; ``local.py``) or ``ray`` (Ray Data
actors on a cluster; ``ray_engine.py``). Both run the same worker stages (``worker.py``: decode, one encoding per
image for all prompts, run-length encoded rows) through the same overlapped executor (``pipeline.py``), so they
write the same rows. Each shard is one Parquet file written atomically (``table.py``: the columns, one row per
instance, per (image, prompt) that found nothing, per failure); ``merge`` turns a job into one COCO file
(``merge.py``). Needs pyarrow (``sam3kit[batch]``); the ray engine needs ``sam3kit[ray]``.
"""

from __future__ import annotations

from .collector import ShardStats
from .exemplars import Exemplars
from .merge import MergeSummary, merge
from .options import DEFAULT_SHARD_SIZE, BatchOptions
from .runner import BatchSummary, run

__all__ = ["run", "merge", "BatchOptions", "BatchSummary", "ShardStats", "MergeSummary", "Exemplars",
           "DEFAULT_SHARD_SIZE"]
