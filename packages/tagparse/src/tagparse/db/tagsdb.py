"""Open, create, version-check and write the tag-label file (`tags.db`).

Every write here is one transaction per batch, so a killed process leaves either the whole batch
or none of it; write transactions take the lock up front, so a second writer waits its turn.
A writer's `close()` checkpoints the WAL, so the finished file is complete without its `-wal`.
Reads of whole tables go through `TagsDB.reader()`; a file opened with `read_only=True` is never
written, and works on read-only media. Every statement is built from `schema`'s tables and runs
on the one connection of `self.store`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects.sqlite import insert

from tagparse.db.connection import Store, chunks, connect
from tagparse.db.fileformat import check_is_sqlite, check_readable, init_or_migrate
from tagparse.db.reads import Reader
from tagparse.db.schema import KINDS, Parser, labels, meta, parsers, parses, samples, vocab
from tagparse.db.sql import Sql, SqlIn, values_of
from tagparse.db.vocabmeta import PREFIX, VocabMeta
from tagparse.db.writelock import LOCK_SUFFIXES
from tagparse.errors import TagparseError
from tagparse.parsing import ParseResult, ParserSpec

LabelRow = tuple[int, bytes, bytes]  # (sample id, object indices, attribute indices) as int32 LE

_PARSE_VALUES = ("objects", "attributes", "raw_output", "status", "error", "created_at")
_PARSER_VALUES = tuple(f.name for f in fields(Parser))[1:]  # all but the id

_GET_META = Sql(lambda: select(meta.c.value).where(meta.c.key == bindparam("key")))


def _upsert_meta():
    stmt = insert(meta).values(values_of(("key", "value")))
    return stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value})


def _upsert_parse():
    stmt = insert(parses).values(values_of(("caption_hash", "parser_id", *_PARSE_VALUES)))
    return stmt.on_conflict_do_update(
        index_elements=["caption_hash", "parser_id"],
        set_={c: stmt.excluded[c] for c in _PARSE_VALUES},
    )


_SET_META = Sql(_upsert_meta)
_KEY_HASHES = SqlIn(
    lambda keys: select(samples.c.key, samples.c.caption_hash).where(samples.c.key.in_(keys))
)
_SAMPLE_IDS = SqlIn(lambda keys: select(samples.c.key, samples.c.id).where(samples.c.key.in_(keys)))
_ADD_SAMPLE = Sql(lambda: insert(samples).values(values_of(("key", "caption", "caption_hash"))))
_COUNT_SAMPLES = Sql(lambda: select(func.count()).select_from(samples))
_FIND_PARSER = Sql(lambda: select(parsers.c.id).where(parsers.c.fingerprint == bindparam("fp")))
_ADD_PARSER = Sql(lambda: insert(parsers).values(values_of(_PARSER_VALUES)))
_PARSERS = Sql(lambda: select(parsers).order_by(parsers.c.id))
_WRITE_PARSE = Sql(_upsert_parse)
_PARSE_STATES = SqlIn(
    lambda hashes: select(parses.c.caption_hash, parses.c.status, parses.c.created_at).where(
        parses.c.parser_id == bindparam("parser_id"), parses.c.caption_hash.in_(hashes)
    )
)
_PARSED_HASHES = Sql(
    lambda: select(parses.c.caption_hash).where(parses.c.parser_id == bindparam("parser_id"))
)
_OK_HASHES = Sql(
    lambda: select(parses.c.caption_hash).where(
        parses.c.parser_id == bindparam("parser_id"), parses.c.status == "ok"
    )
)
_HAS_VOCAB = Sql(lambda: select(1).where(meta.c.key == f"{PREFIX}fingerprint"))
_CLEAR_LABELS = Sql(lambda: delete(labels))
_CLEAR_VOCAB = Sql(lambda: delete(vocab))
_VOCAB_META = Sql(lambda: select(meta.c.key, meta.c.value).where(meta.c.key.like(f"{PREFIX}%")))
_CLEAR_VOCAB_META = Sql(lambda: delete(meta).where(meta.c.key.like(f"{PREFIX}%")))
_ADD_VOCAB = Sql(lambda: insert(vocab).values(values_of(("kind", "idx", "tag", "count"))))
_PUT_LABELS = Sql(
    lambda: (
        insert(labels)
        .prefix_with("OR REPLACE")
        .values(values_of(("sample_id", "objects", "attributes")))
    )
)


def caption_hash(caption: str) -> str:
    """Content hash of a caption; parses are cached per (caption hash, parser)."""
    return hashlib.sha1(caption.encode("utf-8")).hexdigest()


@dataclass
class SampleWriteStats:
    added: int = 0
    repeated: int = 0  # same key, same caption: already stored
    conflicts: int = 0  # same key, different caption: the first caption wins


class TagsDB:
    """A tags.db file. Use `TagsDB.open(path)`; it validates format and version first.

    Methods that take `conn` join the caller's `transaction()` (any value it yielded); without
    it, a write is a transaction of its own.
    """

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = path
        self.read_only = read_only
        self.store = Store(path, read_only=read_only)

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
            return cls(path, read_only=True)
        if path.exists():
            check_is_sqlite(path)
        elif not create:
            raise TagparseError(f"{path}: no such tags.db; run `tagparse run --db {path}` first")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = cls(path)
        with db.transaction() as tx:
            init_or_migrate(tx, path, create)
        return db

    def close(self) -> None:
        """Close the connection; a writer first checkpoints the WAL into the file."""
        if not self.read_only and self.path.exists():
            self.store.checkpoint()
        self.store.close()

    def transaction(self) -> AbstractContextManager[Store]:
        """One write transaction that several writes join (`conn=`): all of them or none.

        It waits its turn for the write lock (up to the busy timeout, fairly: see
        `writelock`), and holds it until the commit.
        """
        return self.store.transaction()

    def raw(self) -> sqlite3.Connection:
        """A read-only sqlite3 connection of its own (`mode=ro`), for bulk reads."""
        return connect(self.path, read_only=True)

    def reader(self) -> Reader:
        """The read queries over one read-only connection; close it (or use `with`) when done."""
        return Reader(self.raw())

    # -- metadata ----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.store.execute(_GET_META.text, (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, items: dict[str, str], conn: Store | None = None) -> None:
        with self.store.transaction() as tx:
            tx.executemany(_SET_META.text, items.items())

    def vocab_meta(self) -> VocabMeta | None:
        """How the stored vocabulary was built; None when `tagparse vocab` has not run."""
        return VocabMeta.from_meta(dict(self.store.execute(_VOCAB_META.text)), self.path)

    # -- samples -------------------------------------------------------------------------------
    def add_samples(
        self, rows: Sequence[tuple[str, str]], conn: Store | None = None
    ) -> SampleWriteStats:
        """Insert (key, caption) rows in one transaction; the first caption seen for a key wins.

        Pass `conn` to join a caller's transaction (the parse pipeline writes samples and parses
        of a batch together).
        """
        stats = SampleWriteStats()
        if not rows:
            return stats
        with self.store.transaction() as tx:
            existing = self.stored_key_hashes([k for k, _ in rows])
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
                new.append((key, caption, h))
            tx.executemany(_ADD_SAMPLE.text, new)
            stats.added = len(new)
        return stats

    def stored_key_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        """Caption hash stored for each of `keys` that is already a sample."""
        found: dict[str, str] = {}
        for chunk in chunks(list(keys)):
            found.update(self.store.execute(_KEY_HASHES.text(len(chunk)), chunk))
        return found

    def sample_ids(self, keys: Sequence[str], conn: Store) -> dict[str, int]:
        """key -> sample id for the stored ones among `keys`, inside the caller's transaction."""
        found: dict[str, int] = {}
        for chunk in chunks(list(keys)):
            found.update(self.store.execute(_SAMPLE_IDS.text(len(chunk)), chunk))
        return found

    def count_samples(self) -> int:
        return self.store.execute(_COUNT_SAMPLES.text).fetchone()[0]

    # -- parsers and parses ----------------------------------------------------------------------
    def find_parser(self, spec: ParserSpec, conn: Store | None = None) -> int | None:
        """The id of the parser with this fingerprint, None when it is not stored yet."""
        row = self.store.execute(_FIND_PARSER.text, (spec.fingerprint,)).fetchone()
        return row[0] if row else None

    def register_parser(self, spec: ParserSpec, conn: Store | None = None) -> int:
        """Return the id of the parser with this fingerprint, creating the row if new."""
        with self.store.transaction() as tx:
            found = self.find_parser(spec)
            if found is not None:
                return found
            params = json.dumps(spec.params, sort_keys=True)
            row = (spec.fingerprint, spec.backend, spec.model, spec.prompt_id, spec.prompt_hash)
            cursor = tx.execute(
                _ADD_PARSER.text, (*row, spec.normalizer_version, params, time.time())
            )
            return cursor.lastrowid

    def parsers(self) -> list[Parser]:
        return [Parser(*row) for row in self.store.execute(_PARSERS.text)]

    def write_parses(
        self,
        parser_id: int,
        items: Sequence[tuple[str, ParseResult]],
        conn: Store | None = None,
    ) -> None:
        """Store (caption hash, result) pairs in one transaction, replacing older parses."""
        if not items:
            return
        now = time.time()
        rows = [
            (
                h,
                parser_id,
                json.dumps(r.objects, ensure_ascii=False),
                json.dumps(r.attributes, ensure_ascii=False),
                r.raw_output,
                r.status,
                r.error,
                now,
            )
            for h, r in items
        ]
        with self.store.transaction() as tx:
            tx.executemany(_WRITE_PARSE.text, rows)

    def parse_states(
        self, parser_id: int, hashes: Iterable[str], conn: Store | None = None
    ) -> dict[str, tuple[str, float]]:
        """(status, created_at) of this parser's existing parses among `hashes` (inside the
        caller's transaction with `conn`, so it also sees that transaction's own writes)."""
        found: dict[str, tuple[str, float]] = {}
        for chunk in chunks(list(hashes)):  # runs once per batch of every re-run: cached text
            rows = self.store.execute(_PARSE_STATES.text(len(chunk)), (parser_id, *chunk))
            found.update((h, (st, t)) for h, st, t in rows)
        return found

    def parsed_hashes(self, parser_id: int, *, failed: bool = True) -> Iterator[str]:
        """The caption hashes this parser has a parse of (`failed=False`: its successful ones
        only), streamed from the cursor: `--distributor ray` skips them before they are sent,
        and at 12M captions a list of them would cost ~1 GB of Python strings."""
        statement = _PARSED_HASHES if failed else _OK_HASHES
        for (h,) in self.store.execute(statement.text, (parser_id,)):
            yield h

    def resolve_parser(self, name: str | None) -> Parser:
        """Pick a parser by fingerprint prefix, backend or label; with no name, the latest one."""
        known_parsers = self.parsers()
        if not known_parsers:
            raise TagparseError(
                f"{self.path}: no parses yet; run `tagparse run --db {self.path}` first"
            )
        if name is None:
            return known_parsers[-1]
        matches = [
            p
            for p in known_parsers
            if p.fingerprint.startswith(name)
            or p.backend == name
            or f"{p.backend}:{p.model}" == name
        ]
        if not matches:
            known = ", ".join(f"{p.backend}@{p.fingerprint[:8]}" for p in known_parsers)
            raise TagparseError(f"{self.path}: no parser matches {name!r}; known parsers: {known}")
        return matches[-1]

    # -- vocabulary and labels -------------------------------------------------------------------
    def clear_vocab(self, conn: Store | None = None) -> bool:
        """Drop the vocabulary, its labels and its meta keys; True if there was a vocabulary.

        Labels are derived data: whatever changes the parses they came from must clear them.
        """
        with self.store.transaction() as tx:
            had = tx.execute(_HAS_VOCAB.text).fetchone()
            for stmt in (_CLEAR_LABELS, _CLEAR_VOCAB, _CLEAR_VOCAB_META):
                tx.execute(stmt.text)
        return had is not None

    def write_vocab(
        self,
        entries: Mapping[str, Sequence[tuple[str, int]]],
        meta: VocabMeta,
        labels: Iterable[LabelRow] | None = None,
        conn: Store | None = None,
    ) -> None:
        """Replace the vocabulary (kind -> [(tag, count)], index = position) in one transaction.

        With `labels`, every sample's labels are replaced too; without, the stored ones stay.
        """
        with self.store.transaction() as tx:
            tx.execute(_CLEAR_VOCAB.text)
            tx.executemany(
                _ADD_VOCAB.text,
                [(k, i, t, c) for k in KINDS for i, (t, c) in enumerate(entries.get(k, ()))],
            )
            if labels is not None:
                tx.execute(_CLEAR_LABELS.text)
                self.write_labels(labels, tx)
            self.set_meta(meta.to_meta(), tx)

    def write_labels(self, rows: Iterable[LabelRow], conn: Store) -> None:
        """Store (or replace) samples' label blobs inside the caller's transaction."""
        with self.store.transaction() as tx:  # bulk: one executemany of the cached text
            tx.executemany(_PUT_LABELS.text, rows)


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
    store = Store(path, read_only=True)
    try:
        return store.execute(_COUNT_SAMPLES.text).fetchone()[0] == 0
    except sqlite3.Error:  # no samples table yet (or not even SQLite): nothing to keep
        return True
    finally:
        store.close()
