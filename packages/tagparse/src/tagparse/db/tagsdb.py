"""Open, create, version-check and write the tag-label file (`tags.db`).

Every write here is one transaction per batch, so a killed process leaves either the whole batch
or none of it; write transactions take the lock up front, so a second writer waits its turn.
A writer's `close()` checkpoints the WAL, so the finished file is complete without its `-wal`.
Reads of whole tables go through `TagsDB.reader()` (plain sqlite3, no ORM rows); a file opened
with `read_only=True` is never written, and works on read-only media.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tagparse.db.connection import (
    BUSY_TIMEOUT_MS,
    checkpoint,
    chunks,
    connect,
    engine_for,
    marks,
    writes,
)
from tagparse.db.fileformat import check_is_sqlite, check_readable, init_or_migrate
from tagparse.db.reads import Reader
from tagparse.db.schema import KINDS, Meta, Parse, Parser, Sample
from tagparse.db.writelock import LOCK_SUFFIXES, write_lock
from tagparse.errors import TagparseError
from tagparse.parsing import ParseResult, ParserSpec

LabelRow = tuple[int, bytes, bytes]  # (sample id, object indices, attribute indices) as int32 LE


def caption_hash(caption: str) -> str:
    """Content hash of a caption; parses are cached per (caption hash, parser)."""
    return hashlib.sha1(caption.encode("utf-8")).hexdigest()


@dataclass
class SampleWriteStats:
    added: int = 0
    repeated: int = 0  # same key, same caption: already stored
    conflicts: int = 0  # same key, different caption: the first caption wins


class TagsDB:
    """A tags.db file. Use `TagsDB.open(path)`; it validates format and version first."""

    def __init__(self, path: Path, engine: Engine, *, read_only: bool = False):
        self.path = path
        self.engine = engine
        self.read_only = read_only
        self._writes = writes(engine)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, create: bool = False, *, read_only: bool = False) -> TagsDB:
        """Open (and with `create`, initialise) a tags.db; refuse foreign or newer files.

        `read_only` checks format and version without writing anything (no migration): for
        commands that only read, so they also work on read-only media and beside a writer.
        """
        path = Path(path)
        if path.is_dir():
            raise TagparseError(f"{path}: is a directory; pass the tags.db file inside it")
        if read_only:
            check_readable(path)
            return cls(path, engine_for(path, read_only=True), read_only=True)
        if path.exists():
            check_is_sqlite(path)
        elif not create:
            raise TagparseError(f"{path}: no such tags.db; run `tagparse run --db {path}` first")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = cls(path, engine_for(path))
        with db.transaction() as conn:
            init_or_migrate(conn, path, create)
        return db

    def close(self) -> None:
        """Release the engine's connections; a writer first checkpoints the WAL into the file."""
        self.engine.dispose()
        if not self.read_only and self.path.exists():
            checkpoint(self.path)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction that several writes join (`conn=`): all of them or none.

        It takes the fair write lock (`writelock`), then SQLite's (`BEGIN IMMEDIATE`), waiting
        at most the busy timeout in all for other writers' transactions to end.
        """
        with write_lock(self.path, BUSY_TIMEOUT_MS / 1000), self._writes.begin() as conn:
            yield conn

    def session(self) -> Session:
        return Session(self.engine, future=True)

    def raw(self) -> sqlite3.Connection:
        """A read-only plain sqlite3 connection for bulk reads (no ORM overhead, `mode=ro`)."""
        return connect(self.path, read_only=True)

    def reader(self) -> Reader:
        """The read queries over one read-only connection; close it (or use `with`) when done."""
        return Reader(self.raw())

    # -- metadata ----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(Meta.value).where(Meta.key == key)).first()
        return row[0] if row else default

    def set_meta(self, items: dict[str, str], conn: Connection | None = None) -> None:
        stmt = sqlite_insert(Meta).values([{"key": k, "value": v} for k, v in items.items()])
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value}
        )
        with _transaction(self, conn) as tx:
            tx.execute(stmt)

    # -- samples -------------------------------------------------------------------------------
    def add_samples(
        self, rows: Sequence[tuple[str, str]], conn: Connection | None = None
    ) -> SampleWriteStats:
        """Insert (key, caption) rows in one transaction; the first caption seen for a key wins.

        Pass `conn` to join a caller's transaction (the parse pipeline writes samples and parses
        of a batch together).
        """
        stats = SampleWriteStats()
        if not rows:
            return stats
        with _transaction(self, conn) as tx:
            existing = _key_hashes(tx, [k for k, _ in rows])
            new = []
            for key, caption in rows:
                h = caption_hash(caption)
                if key in existing:
                    if existing[key] == h:
                        stats.repeated += 1
                    else:
                        stats.conflicts += 1
                    continue
                existing[key] = h
                new.append({"key": key, "caption": caption, "caption_hash": h})
            if new:
                tx.execute(sqlite_insert(Sample), new)
            stats.added = len(new)
        return stats

    def stored_key_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        """Caption hash stored for each of `keys` that is already a sample."""
        with self.engine.connect() as conn:
            return _key_hashes(conn, keys)

    def sample_ids(self, keys: Sequence[str], conn: Connection) -> dict[str, int]:
        """key -> sample id for the stored ones among `keys`, inside the caller's transaction."""
        raw = conn.connection.driver_connection
        found: dict[str, int] = {}
        for chunk in chunks(list(keys)):
            sql = f"SELECT key, id FROM samples WHERE key IN ({marks(len(chunk))})"
            found.update(raw.execute(sql, tuple(chunk)))
        return found

    def count_samples(self) -> int:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT COUNT(*) FROM samples").scalar_one()

    # -- parsers and parses ----------------------------------------------------------------------
    def find_parser(self, spec: ParserSpec, conn: Connection | None = None) -> int | None:
        """The id of the parser with this fingerprint, None when it is not stored yet."""
        with _reading(self, conn) as tx:
            row = tx.execute(
                select(Parser.id).where(Parser.fingerprint == spec.fingerprint)
            ).first()
        return row[0] if row else None

    def register_parser(self, spec: ParserSpec, conn: Connection | None = None) -> int:
        """Return the id of the parser with this fingerprint, creating the row if new."""
        with _transaction(self, conn) as tx:
            found = self.find_parser(spec, tx)
            if found is not None:
                return found
            result = tx.execute(
                sqlite_insert(Parser).values(
                    fingerprint=spec.fingerprint,
                    backend=spec.backend,
                    model=spec.model,
                    prompt_id=spec.prompt_id,
                    prompt_hash=spec.prompt_hash,
                    normalizer_version=spec.normalizer_version,
                    params=json.dumps(spec.params, sort_keys=True),
                    created_at=time.time(),
                )
            )
            return result.inserted_primary_key[0]

    def parsers(self) -> list[Parser]:
        with self.session() as s:
            return list(s.scalars(select(Parser).order_by(Parser.id)))

    def write_parses(
        self,
        parser_id: int,
        items: Sequence[tuple[str, ParseResult]],
        conn: Connection | None = None,
    ) -> None:
        """Store (caption hash, result) pairs in one transaction, replacing older parses."""
        if not items:
            return
        now = time.time()
        rows = [
            {
                "caption_hash": h,
                "parser_id": parser_id,
                "objects": json.dumps(r.objects, ensure_ascii=False),
                "attributes": json.dumps(r.attributes, ensure_ascii=False),
                "raw_output": r.raw_output,
                "status": r.status,
                "error": r.error,
                "created_at": now,
            }
            for h, r in items
        ]
        stmt = sqlite_insert(Parse)
        stmt = stmt.on_conflict_do_update(
            index_elements=["caption_hash", "parser_id"],
            set_={
                c: stmt.excluded[c]
                for c in ("objects", "attributes", "raw_output", "status", "error", "created_at")
            },
        )
        with _transaction(self, conn) as tx:
            tx.execute(stmt, rows)

    def parse_states(
        self, parser_id: int, hashes: Iterable[str], conn: Connection | None = None
    ) -> dict[str, tuple[str, float]]:
        """(status, created_at) of this parser's existing parses among `hashes` (inside the
        caller's transaction with `conn`, so it also sees that transaction's own writes)."""
        found: dict[str, tuple[str, float]] = {}
        with _reading(self, conn) as tx:
            for chunk in chunks(list(hashes)):
                rows = tx.exec_driver_sql(  # plain SQL: this runs once per batch of every re-run
                    "SELECT caption_hash, status, created_at FROM parses WHERE parser_id = ? "
                    f"AND caption_hash IN ({marks(len(chunk))})",
                    (parser_id, *chunk),
                )
                found.update((h, (st, t)) for h, st, t in rows)
        return found

    def resolve_parser(self, name: str | None) -> Parser:
        """Pick a parser by fingerprint prefix, backend or label; with no name, the latest one."""
        parsers = self.parsers()
        if not parsers:
            raise TagparseError(
                f"{self.path}: no parses yet; run `tagparse run --db {self.path}` first"
            )
        if name is None:
            return parsers[-1]
        matches = [
            p
            for p in parsers
            if p.fingerprint.startswith(name)
            or p.backend == name
            or f"{p.backend}:{p.model}" == name
        ]
        if not matches:
            known = ", ".join(f"{p.backend}@{p.fingerprint[:8]}" for p in parsers)
            raise TagparseError(f"{self.path}: no parser matches {name!r}; known parsers: {known}")
        return matches[-1]

    # -- vocabulary and labels -------------------------------------------------------------------
    def clear_vocab(self, conn: Connection | None = None) -> bool:
        """Drop the vocabulary, its labels and its meta keys; True if there was a vocabulary.

        Labels are derived data: whatever changes the parses they came from must clear them.
        """
        with _transaction(self, conn) as tx:
            raw = tx.connection.driver_connection
            had = raw.execute("SELECT 1 FROM meta WHERE key = 'vocab_fingerprint'").fetchone()
            raw.execute("DELETE FROM labels")
            raw.execute("DELETE FROM vocab")
            raw.execute("DELETE FROM meta WHERE key LIKE 'vocab_%'")
        return had is not None

    def write_vocab(
        self,
        entries: Mapping[str, Sequence[tuple[str, int]]],
        meta: dict[str, str],
        labels: Iterable[LabelRow] | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Replace the vocabulary (kind -> [(tag, count)], index = position) in one transaction.

        With `labels`, every sample's labels are replaced too; without, the stored ones stay.
        """
        with _transaction(self, conn) as tx:
            raw = tx.connection.driver_connection
            raw.execute("DELETE FROM vocab")
            raw.executemany(
                "INSERT INTO vocab(kind, idx, tag, count) VALUES (?,?,?,?)",
                [(k, i, t, c) for k in KINDS for i, (t, c) in enumerate(entries.get(k, ()))],
            )
            if labels is not None:
                raw.execute("DELETE FROM labels")
                self.write_labels(labels, tx)
            self.set_meta(meta, conn=tx)

    def write_labels(self, rows: Iterable[LabelRow], conn: Connection) -> None:
        """Store (or replace) samples' label blobs inside the caller's transaction."""
        conn.connection.driver_connection.executemany(
            "INSERT OR REPLACE INTO labels(sample_id, objects, attributes) VALUES (?,?,?)", rows
        )


@contextmanager
def _transaction(db: TagsDB, conn: Connection | None) -> Iterator[Connection]:
    """The caller's open transaction if given, else a new one committed on exit."""
    if conn is not None:
        yield conn
        return
    with db.transaction() as new:
        yield new


@contextmanager
def _reading(db: TagsDB, conn: Connection | None) -> Iterator[Connection]:
    """The caller's open transaction if given, else a read connection of its own."""
    if conn is not None:
        yield conn
        return
    with db.engine.connect() as new:
        yield new


@contextmanager
def removed_if_left_empty(path: str | Path) -> Iterator[None]:
    """Run a command that may create `path`; if it fails, remove a file it created but never
    filled (no samples), so a failed command leaves no empty tags.db behind."""
    path = Path(path)
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed and path.is_file() and _holds_no_samples(path):
            suffixes = ("-wal", "-shm", "-journal", *LOCK_SUFFIXES)
            for leftover in (path, *(Path(f"{path}{s}") for s in suffixes)):
                leftover.unlink(missing_ok=True)
        raise


def _holds_no_samples(path: Path) -> bool:
    try:
        con = sqlite3.connect(path)
        try:
            return con.execute("SELECT count(*) FROM samples").fetchone()[0] == 0
        finally:
            con.close()
    except sqlite3.Error:  # no samples table yet (or not even SQLite): nothing to keep
        return True


def _key_hashes(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in chunks(list(keys)):
        found.update(
            conn.exec_driver_sql(
                f"SELECT key, caption_hash FROM samples WHERE key IN ({marks(len(chunk))})",
                tuple(chunk),
            ).all()
        )
    return found
