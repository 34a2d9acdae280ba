"""One `--distributor ray` run's Ray side: the cluster, what to skip, the stage, the dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tagparse.db import TagsDB
from tagparse.lazyparser import LazyParser
from tagparse.ray.cluster import RayCluster

if TYPE_CHECKING:
    from tagparse.pipeline import _Reading
    from tagparse.ray.inputs import RayInputs


@contextmanager
def ray_records(
    read: _Reading, parser: LazyParser, db: TagsDB, address: str | None
) -> Iterator[RayInputs]:
    """The run's records, read and parsed by Ray, for as long as the run lasts.

    The captions this parser already has a parse of (its failures too, unless
    `--retry-failed`) are skipped by the read tasks, so a re-run sends nothing. A cluster
    started here (no `address`) has one CPU per worker plus one for the read tasks, and is
    shut down at the end.
    """
    cluster = RayCluster(address, num_cpus=parser.workers + 1)
    try:
        from tagparse.ray.inputs import RayInputs
        from tagparse.ray.stages import stage_for

        parser_id = db.find_parser(parser.spec())
        skip = (
            () if parser_id is None else db.parsed_hashes(parser_id, failed=not read.retry_failed)
        )
        stage = stage_for(parser, read.chunk_size)
        yield RayInputs(read.stream, read.shard, read.limit, skip, stage, read.chunk_size)
    finally:
        cluster.close()
