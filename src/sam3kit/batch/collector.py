"""Rows arrive per unit (local engine) or per shard (ray engine), in any order; ``ShardCollector`` gathers them per
shard and writes a shard's file once rows of all its images are in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .job import Job
from .plan import Shard
from .table import sort_rows, write_shard


@dataclass
class ShardStats:
    """What one written shard holds."""

    shard: int
    images: int
    instances: int  # rows with an instance
    errors: int  # rows with an error
    error_samples: list[str] = field(default_factory=list)  # up to a few "path: error" lines


class ShardCollector:
    """Collect rows of ``job``'s shards to do; ``on_written(stats)`` is called after each shard file is written."""

    def __init__(self, job: Job, on_written: Optional[Callable[[ShardStats], None]] = None) -> None:
        self.job = job
        self.on_written = on_written
        self._open: dict[int, tuple[Shard, list, set]] = {s.index: (s, [], set()) for s in job.todo}
        self.written: list[ShardStats] = []

    @property
    def missing(self) -> list[int]:
        """Shards whose rows are not all in."""
        return sorted(self._open)

    def add(self, table) -> None:
        """Rows of one or more shards (an Arrow table of ``table.schema()``)."""
        import pyarrow.compute as pc

        if table.num_rows == 0:
            return
        ids = table.column("image_id")
        size = self.job.shard_size
        lo, hi = (int(v) for v in pc.min_max(ids).values())
        if (lo - 1) // size == (hi - 1) // size:
            self._add(((lo - 1) // size), table)
            return
        shard_of = pc.divide(pc.subtract(ids, 1), size)
        for k in pc.unique(shard_of).to_pylist():
            self._add(int(k), table.filter(pc.equal(shard_of, k)))

    def _add(self, k: int, table) -> None:
        import pyarrow.compute as pc

        if k not in self._open:
            raise AssertionError(f"rows of shard {k}, which is not being computed")
        shard, parts, seen = self._open[k]
        parts.append(table)
        seen.update(pc.unique(table.column("image_id")).to_pylist())
        if len(seen) == len(shard.images):
            self._write(k)

    def _write(self, k: int) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        shard, parts, _ = self._open.pop(k)
        table = sort_rows(pa.concat_tables(parts))
        write_shard(self.job.shard_dir / shard.name, table, self.job.identity(shard))
        errors = table.filter(pc.is_valid(table.column("error")))
        samples = [e if p in e else f"{p}: {e}" for p, e in zip(errors.column("path").to_pylist()[:3],
                                                                 errors.column("error").to_pylist()[:3])]
        stats = ShardStats(k, len(shard.images), int(pc.sum(pc.is_valid(table.column("instance"))).as_py() or 0),
                           errors.num_rows, samples)
        self.written.append(stats)
        if self.on_written is not None:
            self.on_written(stats)
