"""`tagparse run`: stream captions, parse the ones not cached yet, commit the answers in chunks.

Captions to parse go to the backend one by one through a bounded window (`tagparse.stream`),
refilled as each answer comes in: no caption waits for a slow one. The single writer commits the
answers in chunks (`chunk_size` of them, or whatever came in within `commit_seconds`) while the
window's requests stay in flight. A parse and every new sample row that refers to it are written
in the same SQLite transaction, so a run killed at any moment (even SIGKILL) leaves only samples
with their parses and loses at most the uncommitted chunk: re-running skips what is stored and
adds what is missing, never a duplicate. Captions are deduplicated by content hash within a read
chunk, across those in flight and (through the database) across the whole run.

With `distributor="ray"` (`tagparse.ray`) Ray Data reads the inputs and runs the backend as
actors; the records come back already parsed (`ParsedRecord`) and this same writer commits them:
the chunks, the resume and the no-duplicate guarantees are the local run's.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from tagparse.backends.options import backend_kwargs, check_options
from tagparse.db import TagsDB, caption_hash
from tagparse.db.tagsdb import removed_if_left_empty
from tagparse.errors import TagparseError
from tagparse.inputs import InputOptions, InputStream, ParsedRecord, Record
from tagparse.lazyparser import LazyParser
from tagparse.parsing import ParseResult
from tagparse.stream import ParseStream

EMPTY_CAPTION_ERROR = "empty caption"
# A chunk smaller than --chunk-size is committed once its oldest answer is this old: a slow
# backend still commits often, so a kill loses little.
COMMIT_SECONDS = 5.0
DISTRIBUTORS = ("local", "ray")  # `--distributor`: this machine, or a Ray cluster


@dataclass
class RunSummary:
    """What a run did. Every record lands in exactly one of the counters after `records`."""

    parser: str = ""
    records: int = 0  # records of this shard read from the inputs
    parsed: int = 0  # distinct captions parsed successfully in this run
    failed: int = 0  # distinct captions whose parse failed in this run (empty captions included)
    cached: int = 0  # distinct captions with a successful parse from an earlier run
    failed_earlier: int = 0  # distinct captions whose earlier parse failed (see --retry-failed)
    duplicates: int = 0  # records whose caption was already handled in this run
    conflicts: int = 0  # records whose key was stored with another caption (the first one wins)
    new_samples: int = 0
    truncated: int = 0  # captions cut to MAX_CAPTION_CHARS
    damaged_shards: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # the first few "key: error" lines

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.failed_earlier == 0

    def lines(self) -> list[str]:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        out = [
            (
                f"parser {self.parser}: {self.records:,} records in {self.seconds:.1f} s "
                f"({rate:,.0f} captions/s), {self.new_samples:,} new samples"
            ),
            (
                f"parsed {self.parsed:,} · cached {self.cached:,} · failed {self.failed:,} · "
                f"failed earlier {self.failed_earlier:,} · duplicates {self.duplicates:,} · "
                f"key conflicts {self.conflicts:,} · truncated {self.truncated:,}"
            ),
        ]
        if self.damaged_shards:
            out.append(f"{self.damaged_shards} damaged tar shard(s): see the warnings above")
        if self.failures:
            out.append("failures (first few): " + "; ".join(self.failures))
        if self.failed_earlier:
            out.append(
                f"{self.failed_earlier:,} captions failed in an earlier run; "
                "re-run with --retry-failed"
            )
        return out


def shard_of(key: str, n_shards: int) -> int:
    """Stable shard of a sample key (same on every machine and Python version)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Whether the record with `key` belongs to `--shard I/N` (`shard` = (I, N))."""
    i, n = shard
    return n == 1 or shard_of(key, n) == i


def run_parse(
    db_path: str | Path,
    inputs: list[str],
    backend: str,
    options: dict,
    *,
    batch_size: int = 256,
    workers: int = 1,
    limit: int | None = None,
    shard: tuple[int, int] = (0, 1),
    retry_failed: bool = False,
    progress: bool = True,
    input_options: InputOptions | dict | None = None,
    on_warning: Callable[[str], None] | None = None,
    commit_seconds: float = COMMIT_SECONDS,
    distributor: str = "local",
    ray_address: str | None = None,
) -> RunSummary:
    """Parse every caption of `inputs` not cached in `db_path` with `backend`; see module doc.

    `batch_size` is the commit chunk (`--chunk-size`, formerly `--batch-size`) and the size of
    the `parse_batch` calls of backends that do not stream; it does not limit what is in flight.
    `distributor="ray"` parses with `workers` Ray actors on the cluster at `ray_address` (None:
    a local cluster started for this run); this process still writes every row.
    """
    _check_args(batch_size, workers, limit, shard)
    _check_distributor(distributor, ray_address)
    if isinstance(input_options, dict):
        input_options = InputOptions(**input_options)
    check_options(backend, options)
    stream = InputStream(inputs, input_options, on_warning)
    parser = LazyParser(backend, _backend_options(backend, options, batch_size), workers)
    with removed_if_left_empty(db_path):  # a run that fails before its first batch leaves none
        try:
            db = TagsDB.open(db_path, create=True)
        except BaseException:
            parser.close()
            raise
        try:
            read = _Reading(stream, shard, limit, retry_failed, batch_size)
            with _records(read, parser, db, distributor, ray_address) as (source, records):
                run = _Run(
                    db,
                    parser,
                    source,
                    retry_failed,
                    progress,
                    limit,
                    chunk_size=batch_size,
                    commit_seconds=commit_seconds,
                )
                run.execute(records)
        finally:
            parser.close()
            db.close()
    run.summary.truncated = source.truncated_captions
    run.summary.damaged_shards = source.damaged_shards
    run.summary.warnings = list(source.warnings)
    return run.summary


@dataclass(frozen=True)
class _Reading:
    """What a run reads: the inputs, which records of them, and how many at a time."""

    stream: InputStream
    shard: tuple[int, int]
    limit: int | None
    retry_failed: bool
    chunk_size: int


@contextmanager
def _records(
    read: _Reading, parser: LazyParser, db: TagsDB, distributor: str, ray_address: str | None
) -> Iterator[tuple[InputStream, Iterable[Record]]]:
    """(the inputs' progress and warnings, the records to plan): read here, or by Ray (whose
    records arrive parsed, on a cluster joined or started for the run's length)."""
    if distributor == "local":
        yield read.stream, _select(read.stream, read.shard, read.limit)
        return
    from tagparse.ray.run import ray_records  # Ray is imported only when asked for

    with ray_records(read, parser, db, ray_address) as inputs:
        yield inputs, inputs


def _check_args(batch_size: int, workers: int, limit: int | None, shard: tuple[int, int]) -> None:
    if batch_size < 1:
        raise TagparseError(f"--chunk-size/--batch-size must be at least 1 (got {batch_size})")
    if workers < 1:
        raise TagparseError(f"--workers must be at least 1 (got {workers})")
    if limit is not None and limit < 0:
        raise TagparseError(f"--limit must not be negative (got {limit})")
    i, n = shard
    if n < 1 or not 0 <= i < n:
        raise TagparseError(f"--shard {i}/{n}: need 0 <= I < N, e.g. --shard 0/4")


def _check_distributor(distributor: str, ray_address: str | None) -> None:
    """A wrong `--distributor`/`--ray-address`, or a missing Ray, fails before any input is read
    (the address is tried at once, not after Ray's minute of retries)."""
    if distributor not in DISTRIBUTORS:
        raise TagparseError(
            f"--distributor {distributor!r}: choose one of {', '.join(DISTRIBUTORS)}"
        )
    if distributor == "local":
        if ray_address is not None:
            raise TagparseError("--ray-address needs --distributor ray; add it or drop the address")
        return
    from tagparse.ray.cluster import check_reachable, import_ray

    import_ray()
    if ray_address is not None:
        check_reachable(ray_address)


def _backend_options(backend: str, options: dict, batch_size: int) -> dict:
    """The backend's keywords (`backend_kwargs`), synonym/stop-list files made a normalizer."""
    opts = backend_kwargs(backend, options, batch_size)
    synonyms, stoplist = opts.pop("synonyms", None), opts.pop("stoplist", None)
    if (synonyms or stoplist) and "normalizer" not in opts:
        from tagparse.normalize import Normalizer  # the NLP stack's module, needed only here

        opts["normalizer"] = Normalizer.from_files(synonyms, stoplist)
    return opts


def _select(
    records: Iterable[Record], shard: tuple[int, int], limit: int | None
) -> Iterator[Record]:
    taken = 0
    for rec in records:
        if not in_shard(rec.key, shard):
            continue
        if limit is not None and taken >= limit:
            return
        taken += 1
        yield rec


# -- one run --------------------------------------------------------------------------------------


@dataclass
class _Waiting:
    """What waits for one caption's parse to be committed: its new rows, and its records."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0


def _chunks(records: Iterable[Record], n: int) -> Iterator[list[Record]]:
    """`records` n at a time; on bad input, the records read before it, then the error."""
    chunk: list[Record] = []
    try:
        for rec in records:
            chunk.append(rec)
            if len(chunk) >= n:
                yield chunk
                chunk = []
    except TagparseError:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


class _Run:
    """The single writer: plans captions, keeps the window full, commits chunks as they finish.

    Each caption to parse is submitted on its own; its parse and every new sample row that
    refers to it are committed together, so a stored sample always has its parse. A chunk is
    committed once `chunk_size` parses or rows are ready or `commit_seconds` have passed, while
    the window's requests stay in flight.
    """

    def __init__(
        self,
        db: TagsDB,
        parser: LazyParser,
        stream: InputStream,
        retry_failed: bool,
        progress: bool,
        limit: int | None,
        chunk_size: int,
        commit_seconds: float,
    ):
        self.db, self.parser, self.stream = db, parser, stream
        self.retry_failed, self.limit = retry_failed, limit
        self.chunk_size, self.commit_seconds = chunk_size, commit_seconds
        self.spec = parser.spec()
        # registered with the first chunk it parses: a run that stops before leaves no trace
        self.parser_id = db.find_parser(self.spec)
        self.summary = RunSummary(parser=self.spec.label)
        self.started = time.time()
        self.window: ParseStream | None = None  # opened when the first caption needs parsing
        self.sent: dict[str, Record] = {}  # hash -> record at the backend, not answered yet
        self.done: list[tuple[str, Record, ParseResult]] = []  # answered, not committed yet
        self.waiting: dict[str, _Waiting] = {}  # hash -> what its commit also writes
        self.ready_rows: list[tuple[str, str]] = []  # rows whose caption's parse is stored
        self.resolved = 0  # records settled since the last commit (the progress bar's count)
        self.since: float | None = None  # when the oldest uncommitted thing was settled
        self.in_flight_keys: dict[str, str] = {}  # key -> hash of rows not committed yet
        self.in_flight_hashes: set[str] = set()  # hashes parsed in this run, not committed yet
        self.show_progress = progress
        self.bar: tqdm | None = None  # shown from the first commit: a run that stops at once
        # (bad input, a fault) prints its error line alone

    def execute(self, records: Iterable[Record]) -> None:
        try:
            try:
                for chunk in _chunks(records, self.chunk_size):
                    self._plan(chunk)
                    self._pump(wait=False)
                    while self.window is not None and len(self.sent) >= self.window.window:
                        self._pump(wait=True)
            except TagparseError:  # bad input mid-run: store what was read before it, then report
                self._drain()
                raise
            self._drain()
        finally:
            self.summary.seconds = time.time() - self.started
            if self.window is not None:
                self.window.close()
            if self.bar is not None:
                self.bar.close()

    def _drain(self) -> None:
        if self.window is not None:
            self.window.flush()
        while self.sent:
            self._pump(wait=True)
        self._commit()

    def _pump(self, wait: bool) -> None:
        """Take the answers in (waiting, if asked, until one comes or a commit is due); commit a
        chunk when one is due."""
        if self.sent:
            for h, result in self.window.completed(self._until_due() if wait else 0):
                self.done.append((h, self.sent.pop(h), result))
                self._settled()
        uncommitted = max(len(self.done) + len(self.ready_rows), self.resolved)
        if uncommitted >= self.chunk_size or (
            self.since is not None and time.monotonic() - self.since >= self.commit_seconds
        ):
            self._commit()

    def _until_due(self) -> float:
        if self.since is None:
            return self.commit_seconds
        return max(0.0, self.since + self.commit_seconds - time.monotonic())

    def _settled(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def _plan(self, records: list[Record]) -> None:
        s = self.summary
        s.records += len(records)
        stored = self.db.stored_key_hashes([r.key for r in records])
        keys: dict[str, str] = {}
        entries: list[tuple[str, tuple[str, str] | None]] = []  # (hash, new row) per record
        candidates: dict[str, Record] = {}
        for rec in records:
            h = caption_hash(rec.caption)
            first = stored.get(rec.key) or self.in_flight_keys.get(rec.key) or keys.get(rec.key)
            if first is not None and first != h:
                s.conflicts += 1
                self.resolved += 1
                continue
            row = None
            if first is None:
                keys[rec.key] = h
                row = (rec.key, rec.caption)
            entries.append((h, row))
            if h in candidates or h in self.in_flight_hashes:
                s.duplicates += 1
                continue
            candidates[h] = rec
        known = {} if self.parser_id is None else self.db.parse_states(self.parser_id, candidates)
        for h, (status, created_at) in known.items():
            rec = candidates.pop(h)
            if created_at >= self.started:
                s.duplicates += 1
            elif status == "ok":
                s.cached += 1
            elif self.retry_failed:
                candidates[h] = rec  # parse again
            else:
                s.failed_earlier += 1
        self.in_flight_keys.update(keys)
        self.in_flight_hashes.update(candidates)
        for h, rec in candidates.items():
            if rec.caption.strip():
                self._send(h, rec)
            else:  # stored as a failure without asking the backend
                self.done.append((h, rec, ParseResult.failure(EMPTY_CAPTION_ERROR)))
        for h, row in entries:
            if h in self.in_flight_hashes:
                waiting = self.waiting.setdefault(h, _Waiting())
                waiting.records += 1
                waiting.rows.extend([row] if row else [])
            else:
                self.resolved += 1
                self.ready_rows.extend([row] if row else [])
        if self.resolved or self.ready_rows or self.done:
            self._settled()

    def _send(self, h: str, rec: Record) -> None:
        if isinstance(rec, ParsedRecord) and rec.result is not None:
            self.done.append((h, rec, rec.result))  # parsed upstream: committed as answered
            return
        if self.window is None:
            self.window = self.parser.open_stream(self.chunk_size, self.spec.label)
        self.sent[h] = rec
        self.window.submit(h, rec.caption)

    def _commit(self) -> None:
        done, rows = self.done, self.ready_rows
        self.done, self.ready_rows = [], []
        for h, _, _ in done:
            waiting = self.waiting.pop(h, _Waiting())
            rows += waiting.rows
            self.resolved += waiting.records
        if not (done or rows or self.resolved):
            return
        s = self.summary
        if done or rows:
            with self.db.transaction() as conn:
                written = self.db.add_samples(rows, conn=conn)
                parser_id = self.parser_id or self.db.register_parser(self.spec, conn)
                self.db.write_parses(parser_id, [(h, r) for h, _, r in done], conn=conn)
            self.parser_id = parser_id  # only once committed
            s.new_samples += written.added
            s.conflicts += written.conflicts
        for _, rec, r in done:
            if r.status == "ok":
                s.parsed += 1
            else:
                s.failed += 1
                if len(s.failures) < 3:
                    s.failures.append(f"{rec.key}: {r.error}")
        for key, _ in rows:
            self.in_flight_keys.pop(key, None)
        self.in_flight_hashes.difference_update(h for h, _, _ in done)
        self._progress(self.resolved)
        self.resolved, self.since = 0, None

    def _progress(self, n: int) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=None,
                unit="caption",
                desc="parsing",
                disable=not self.show_progress,
                mininterval=0.5,
                dynamic_ncols=True,
            )
        limit = self.limit
        read, total = self.stream.bytes_read, self.stream.total_bytes
        if read > 0:
            estimate = max(self.summary.records, int(self.summary.records * total / read))
            self.bar.total = min(estimate, limit) if limit is not None else estimate
        self.bar.update(n)
