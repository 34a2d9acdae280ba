"""The run's inputs as a Ray dataset: one finite read task per input file, our own reader.

Each read task reads one file with `tagparse.inputs.InputStream` (so keys, caption columns,
truncation, damaged tar shards and bad-input errors are exactly the local run's), keeps the
records of this `--shard`, and yields them `block_rows` at a time (small blocks stream to the
backend stage while the file is still being read). A record is marked `parse` unless its caption
is empty or already cached: the driver sends the cached captions' SHA-1 digests once, as a
sorted `S20` array in Ray's object store (20 bytes a caption, read zero-copy by every task; a
Python set of hex strings would be ~5x larger to pickle). Every record still reaches the driver,
which writes its sample row; only the `parse` ones cost a backend call.

A file's last row is a *note* (no key): its warnings, counters and size, for the run summary.
Every column is a scalar (the parse result travels as JSON text), so blocks of any stage have
one Arrow schema.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from tagparse.inputs import InputOptions, InputStream, Record
from tagparse.parsing import ParseResult
from tagparse.pipeline import in_shard

SCHEMA = pa.schema(
    [
        ("key", pa.string()),  # null: the file's note row
        ("caption", pa.string()),
        ("where", pa.string()),
        ("parse", pa.bool_()),  # send to the backend
        ("result", pa.string()),  # the ParseResult as JSON; "" when not parsed
        ("warnings", pa.string()),  # note row: the file's warnings, a JSON list
        ("truncated", pa.int64()),  # note row: captions cut to MAX_CAPTION_CHARS
        ("damaged", pa.int64()),  # note row: damaged tar shards
        ("bytes", pa.int64()),  # note row: the file's size
    ]
)
FIELDS = tuple(SCHEMA.names)


def digests(hex_hashes: Iterable[str]) -> np.ndarray:
    """Sorted SHA-1 digests (`S20`) of cached captions: what the read tasks skip."""
    raw = b"".join(bytes.fromhex(h) for h in hex_hashes)
    return np.sort(np.frombuffer(raw, dtype="S20"))


def _is_cached(cached: np.ndarray, captions: list[str]) -> np.ndarray:
    if not len(cached) or not captions:
        return np.zeros(len(captions), dtype=bool)
    wanted = np.array([hashlib.sha1(c.encode("utf-8")).digest() for c in captions], dtype="S20")
    at = np.minimum(np.searchsorted(cached, wanted), len(cached) - 1)
    return cached[at] == wanted


def _block(records: list[Record], cached: np.ndarray) -> pa.Table:
    captions = [r.caption for r in records]
    skip = _is_cached(cached, captions)
    rows = [
        {"key": r.key, "caption": r.caption, "where": r.where, "parse": bool(r.caption.strip())}
        for r in records
    ]
    for row, is_cached in zip(rows, skip):
        row["parse"] = row["parse"] and not is_cached
    return pa.Table.from_pylist([_full(row) for row in rows], schema=SCHEMA)


def _full(row: dict) -> dict:
    """`row` with every column of SCHEMA (the defaults of a record row)."""
    defaults = {"result": "", "warnings": "[]", "truncated": 0, "damaged": 0, "bytes": 0}
    return {**defaults, **row}


def _read_file(
    path: Path, options: InputOptions, shard: tuple[int, int], cached_ref, block_rows: int
) -> Iterator[pa.Table]:
    cached = ray.get(cached_ref)
    stream = InputStream([glob.escape(str(path))], options)  # a resolved path, not a glob
    block: list[Record] = []
    for rec in stream:
        if not in_shard(rec.key, shard):
            continue
        block.append(rec)
        if len(block) >= block_rows:
            yield _block(block, cached)
            block = []
    if block:
        yield _block(block, cached)
    note = {
        "key": None,
        "caption": "",
        "where": str(path),
        "parse": False,
        "warnings": json.dumps(stream.warnings),
        "truncated": stream.truncated_captions,
        "damaged": stream.damaged_shards,
        "bytes": stream.total_bytes,
    }
    yield pa.Table.from_pylist([_full(note)], schema=SCHEMA)


class CaptionSource(Datasource):
    """The Ray Data source of `tagparse run`'s inputs (see the module doc)."""

    def __init__(
        self,
        paths: list[Path],
        options: InputOptions,
        shard: tuple[int, int],
        cached_ref,
        block_rows: int,
    ):
        self._paths, self._options, self._shard = paths, options, shard
        self._cached_ref, self._block_rows = cached_ref, block_rows

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(p.stat().st_size for p in self._paths)

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
        return [self._task(path) for path in self._paths]

    def _task(self, path: Path) -> ReadTask:
        options, shard, ref, rows = self._options, self._shard, self._cached_ref, self._block_rows
        meta = BlockMetadata(
            num_rows=None, size_bytes=path.stat().st_size, input_files=[str(path)], exec_stats=None
        )
        return ReadTask(lambda: _read_file(path, options, shard, ref, rows), meta, SCHEMA)


def encode_result(result: ParseResult) -> str:
    """A parse as the `result` column's JSON text."""
    return json.dumps(dataclasses.asdict(result))


def decode_result(text: str) -> ParseResult:
    return ParseResult(**json.loads(text))
