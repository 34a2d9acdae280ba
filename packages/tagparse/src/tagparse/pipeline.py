"""`tagparse run`: stream captions, parse the ones not cached yet, store each batch atomically.

A batch's samples and parses are written in one SQLite transaction, in input order, so a run
killed at any moment (even SIGKILL) leaves whole batches only: re-running skips what is stored and
adds what is missing, never a duplicate. Captions are deduplicated by content hash within a batch,
across in-flight batches and (through the database) across the whole run.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from tagparse.backends import backend_factory, backend_spec, build_backend
from tagparse.backends.base import Backend
from tagparse.db import TagsDB, caption_hash
from tagparse.db.tagsdb import removed_if_left_empty
from tagparse.errors import TagparseError
from tagparse.inputs import InputOptions, InputStream, Record
from tagparse.parentdeath import die_with_parent
from tagparse.parsing import ParseResult, ParserSpec

EMPTY_CAPTION_ERROR = "empty caption"


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
) -> RunSummary:
    """Parse every caption of `inputs` not cached in `db_path` with `backend`; see module doc."""
    _check_args(batch_size, workers, limit, shard)
    if isinstance(input_options, dict):
        input_options = InputOptions(**input_options)
    stream = InputStream(inputs, input_options, on_warning)
    parser = _LazyParser(backend, _backend_options(options, batch_size), workers)
    with removed_if_left_empty(db_path):  # a run that fails before its first batch leaves none
        try:
            db = TagsDB.open(db_path, create=True)
        except BaseException:
            parser.close()
            raise
        try:
            run = _Run(
                db,
                parser,
                stream,
                retry_failed,
                progress,
                limit,
                max_in_flight=2 * workers if workers > 1 else 1,
            )
            run.execute(_select(stream, shard, limit), batch_size)
        finally:
            parser.close()
            db.close()
    run.summary.truncated = stream.truncated_captions
    run.summary.damaged_shards = stream.damaged_shards
    run.summary.warnings = list(stream.warnings)
    return run.summary


def _check_args(batch_size: int, workers: int, limit: int | None, shard: tuple[int, int]) -> None:
    if batch_size < 1:
        raise TagparseError(f"--batch-size must be at least 1 (got {batch_size})")
    if workers < 1:
        raise TagparseError(f"--workers must be at least 1 (got {workers})")
    if limit is not None and limit < 0:
        raise TagparseError(f"--limit must not be negative (got {limit})")
    i, n = shard
    if n < 1 or not 0 <= i < n:
        raise TagparseError(f"--shard {i}/{n}: need 0 <= I < N, e.g. --shard 0/4")


def _backend_options(options: dict, batch_size: int) -> dict:
    """The backend's CLI options: unset ones dropped, synonym/stop-list files made a normalizer."""
    opts = {k: v for k, v in options.items() if v is not None}
    synonyms, stoplist = opts.pop("synonyms", None), opts.pop("stoplist", None)
    if (synonyms or stoplist) and "normalizer" not in opts:
        from tagparse.normalize import Normalizer  # the NLP stack's module, needed only here

        opts["normalizer"] = Normalizer.from_files(synonyms, stoplist)
    opts.setdefault("batch_size", batch_size)
    return opts


def _select(
    records: Iterable[Record], shard: tuple[int, int], limit: int | None
) -> Iterator[Record]:
    i, n = shard
    taken = 0
    for rec in records:
        if n > 1 and shard_of(rec.key, n) != i:
            continue
        if limit is not None and taken >= limit:
            return
        taken += 1
        yield rec


# -- the backend, built on first use ------------------------------------------------------------

_worker_backend: Backend | None = None
_worker_error: BaseException | None = None


def _init_worker(name: str, create: Callable[..., Backend], options: dict, parent_pid: int) -> None:
    global _worker_backend, _worker_error
    die_with_parent(parent_pid)  # a SIGKILLed run must not leave workers holding models
    try:
        _worker_backend = build_backend(name, create, options)
    except BaseException as e:  # noqa: BLE001 -- re-raised in the parent by the first task
        _worker_error = e


def _worker_call(method: str, captions: Sequence[str] = ()):
    if _worker_error is not None:
        raise _worker_error
    return _worker_backend.spec if method == "spec" else _worker_backend.parse_batch(captions)


class _LazyParser:
    """The backend, built only when a caption needs parsing: in process, or once per worker."""

    def __init__(self, name: str, options: dict, workers: int):
        self.name, self.options, self.workers = name, options, workers
        self.create = backend_factory(name)  # unknown backends and missing extras fail here
        self._local: Backend | None = None
        self._pool: ProcessPoolExecutor | None = None

    def spec(self) -> ParserSpec:
        spec = backend_spec(self.name, **self.options)
        if spec is not None:
            return spec
        if self.workers == 1:
            return self._backend().spec
        return self._executor().submit(_worker_call, "spec").result()

    def submit(self, captions: list[str]) -> Future:
        if self.workers > 1:
            return self._executor().submit(_worker_call, "parse", captions)
        done: Future = Future()
        try:
            done.set_result(self._backend().parse_batch(captions))
        except Exception as e:  # noqa: BLE001 -- delivered like a worker's exception
            done.set_exception(e)
        return done

    def _backend(self) -> Backend:
        if self._local is None:
            self._local = build_backend(self.name, self.create, self.options)
        return self._local

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: forking a process that holds SQLite handles and model threads is unsafe
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.name, self.create, self.options, os.getpid()),
            )
        return self._pool

    def close(self) -> None:
        """Release workers, and backend resources such as a managed vLLM server, as the run ends."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        release = getattr(self._local, "close", None)
        if release is not None:
            release()


# -- one run --------------------------------------------------------------------------------------


@dataclass
class _Batch:
    rows: list[tuple[str, str]]  # (key, caption) to store; conflicting keys already dropped
    todo: list[tuple[str, Record]]  # (hash, record) for the backend
    empty: list[tuple[str, Record]]  # empty captions: stored as failures without asking the backend
    keys: dict[str, str]  # key -> hash, for in-flight conflict checks
    size: int  # records in the batch
    future: Future | None = None


class _Run:
    def __init__(
        self,
        db: TagsDB,
        parser: _LazyParser,
        stream: InputStream,
        retry_failed: bool,
        progress: bool,
        limit: int | None,
        max_in_flight: int,
    ):
        self.db, self.parser, self.stream = db, parser, stream
        self.retry_failed, self.limit, self.max_in_flight = retry_failed, limit, max_in_flight
        self.spec = parser.spec()
        # registered with the first batch it parses: a run that stops before leaves no trace
        self.parser_id = db.find_parser(self.spec)
        self.summary = RunSummary(parser=self.spec.label)
        self.started = time.time()
        self.pending: deque[_Batch] = deque()
        self.in_flight_keys: dict[str, str] = {}
        self.in_flight_hashes: set[str] = set()
        self.show_progress = progress
        self.bar: tqdm | None = None  # shown from the first commit: a run that stops at once
        # (bad input, a fault) prints its error line alone

    def execute(self, records: Iterable[Record], batch_size: int) -> None:
        batch: list[Record] = []
        try:
            try:
                for rec in records:
                    batch.append(rec)
                    if len(batch) >= batch_size:
                        self._dispatch(batch)
                        batch = []
            except TagparseError:  # bad input mid-run: store what was read before it, then report
                self._flush(batch)
                raise
            self._flush(batch)
        finally:
            self.summary.seconds = time.time() - self.started
            if self.bar is not None:
                self.bar.close()

    def _flush(self, batch: list[Record]) -> None:
        if batch:
            self._dispatch(batch)
        while self.pending:
            self._commit(self.pending.popleft())

    def _dispatch(self, records: list[Record]) -> None:
        batch = self._plan(records)
        if batch.todo:
            batch.future = self.parser.submit([rec.caption for _, rec in batch.todo])
        self.pending.append(batch)
        self.in_flight_keys.update(batch.keys)
        self.in_flight_hashes.update(h for h, _ in batch.todo + batch.empty)
        while len(self.pending) >= self.max_in_flight:
            self._commit(self.pending.popleft())

    def _plan(self, records: list[Record]) -> _Batch:
        s = self.summary
        s.records += len(records)
        stored = self.db.stored_key_hashes([r.key for r in records])
        rows, keys, candidates = [], {}, {}
        for rec in records:
            h = caption_hash(rec.caption)
            first = stored.get(rec.key) or self.in_flight_keys.get(rec.key) or keys.get(rec.key)
            if first is not None and first != h:
                s.conflicts += 1
                continue
            if first is None:
                keys[rec.key] = h
                rows.append((rec.key, rec.caption))
            if h in candidates or h in self.in_flight_hashes:
                s.duplicates += 1
                continue
            candidates[h] = rec
        todo, empty = [], []
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
        for h, rec in candidates.items():
            (todo if rec.caption.strip() else empty).append((h, rec))
        return _Batch(rows, todo, empty, keys, len(records))

    def _commit(self, batch: _Batch) -> None:
        results = self._results(batch) if batch.future is not None else []
        results += [ParseResult.failure(EMPTY_CAPTION_ERROR) for _ in batch.empty]
        done = batch.todo + batch.empty
        items = [(h, r) for (h, _), r in zip(done, results)]
        with self.db.transaction() as conn:
            written = self.db.add_samples(batch.rows, conn=conn)
            parser_id = self.parser_id or self.db.register_parser(self.spec, conn)
            self.db.write_parses(parser_id, items, conn=conn)
        self.parser_id = parser_id  # only once committed
        s = self.summary
        s.new_samples += written.added
        s.conflicts += written.conflicts
        for (_, rec), r in zip(done, results):
            if r.status == "ok":
                s.parsed += 1
            else:
                s.failed += 1
                if len(s.failures) < 3:
                    s.failures.append(f"{rec.key}: {r.error}")
        for key in batch.keys:
            self.in_flight_keys.pop(key, None)
        self.in_flight_hashes.difference_update(h for h, _ in done)
        self._progress(batch.size)

    def _results(self, batch: _Batch) -> list[ParseResult]:
        try:
            results = batch.future.result()
        except TagparseError:
            raise
        except BrokenProcessPool as e:
            raise TagparseError(
                f"a parser worker process died ({e}); re-run the same command to resume"
            ) from None
        except Exception as e:  # noqa: BLE001 -- a crashed backend call: recorded per caption
            results = [ParseResult.failure(f"{type(e).__name__}: {e}") for _ in batch.todo]
        if len(results) != len(batch.todo):
            raise RuntimeError(
                f"backend {self.spec.label} returned {len(results)} results "
                f"for {len(batch.todo)} captions"
            )
        return results

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
