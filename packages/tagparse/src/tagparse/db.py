"""Open, create, version-check and write the tag-label file (`tags.db`).

Every write here is one transaction per batch, so a killed process leaves either the whole batch
or none of it. WAL mode lets a reviewer's TUI read while a parse run writes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tagparse.backends.base import ParseResult, ParserSpec
from tagparse.errors import FormatError, TagparseError
from tagparse.schema import FORMAT_NAME, FORMAT_VERSION, Base, Meta, Parse, Parser, Sample

SQLITE_MAGIC = b"SQLite format 3\x00"

# Migrations from version N to N+1, applied in order inside one transaction. Format v1 is the first
# released version, so the table is empty; a future v2 registers `MIGRATIONS[1] = fn`.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


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

    def __init__(self, path: Path, engine: Engine):
        self.path = path
        self.engine = engine

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, create: bool = False) -> TagsDB:
        """Open (and with `create`, initialise) a tags.db; refuse foreign or newer files."""
        path = Path(path)
        if path.exists():
            _check_is_sqlite(path)
        elif not create:
            raise TagparseError(f"{path}: no such tags.db; run `tagparse run --db {path}` first")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        db = cls(path, engine)
        db._init_or_migrate(create)
        return db

    def _init_or_migrate(self, create: bool) -> None:
        with self.engine.begin() as conn:
            tables = {
                r[0]
                for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "meta" not in tables:
                if tables - {"sqlite_sequence"}:
                    raise FormatError(
                        f"{self.path}: an SQLite file but not a tags.db (no meta table)"
                    )
                if not create:
                    raise TagparseError(
                        f"{self.path}: empty file; run `tagparse run --db {self.path}` first"
                    )
                Base.metadata.create_all(conn)
                conn.execute(
                    sqlite_insert(Meta).values(
                        [
                            {"key": "format_name", "value": FORMAT_NAME},
                            {"key": "format_version", "value": str(FORMAT_VERSION)},
                            {"key": "created_at", "value": str(time.time())},
                        ]
                    )
                )
                return
            meta = dict(conn.execute(select(Meta.key, Meta.value)).all())
            if meta.get("format_name") != FORMAT_NAME:
                raise FormatError(
                    f"{self.path}: format {meta.get('format_name')!r} is not {FORMAT_NAME!r}"
                )
            version = int(meta.get("format_version", "0"))
            if version > FORMAT_VERSION:
                raise FormatError(
                    f"{self.path}: tags.db format v{version} is newer than this tagparse reads "
                    f"(v{FORMAT_VERSION}); upgrade tagparse (pip install -U tagparse)"
                )
            if version < FORMAT_VERSION:
                raw = conn.connection.driver_connection
                for v in range(version, FORMAT_VERSION):
                    if v not in MIGRATIONS:
                        raise FormatError(
                            f"{self.path}: no migration from format v{v}; re-create the file"
                        )
                    MIGRATIONS[v](raw)
                conn.execute(
                    text("UPDATE meta SET value=:v WHERE key='format_version'"),
                    {"v": str(FORMAT_VERSION)},
                )
            Base.metadata.create_all(conn)  # tables added within the version are created if missing

    def session(self) -> Session:
        return Session(self.engine, future=True)

    def raw(self) -> sqlite3.Connection:
        """A plain sqlite3 connection for bulk reads (the reader API avoids ORM overhead)."""
        con = sqlite3.connect(self.path)
        con.execute("PRAGMA query_only=1")
        return con

    # -- metadata ----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(Meta.value).where(Meta.key == key)).first()
        return row[0] if row else default

    def set_meta(self, items: dict[str, str], conn=None) -> None:
        stmt = sqlite_insert(Meta).values([{"key": k, "value": v} for k, v in items.items()])
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value}
        )
        if conn is not None:
            conn.execute(stmt)
            return
        with self.engine.begin() as c:
            c.execute(stmt)

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
        with _transaction(self.engine, conn) as tx:
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

    def count_samples(self) -> int:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT COUNT(*) FROM samples").scalar_one()

    # -- parsers and parses ----------------------------------------------------------------------
    def register_parser(self, spec: ParserSpec) -> int:
        """Return the id of the parser with this fingerprint, creating the row if new."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(Parser.id).where(Parser.fingerprint == spec.fingerprint)
            ).first()
            if row:
                return row[0]
            result = conn.execute(
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

    def cached_hashes(
        self, parser_id: int, hashes: Iterable[str], *, include_failed: bool = True
    ) -> set[str]:
        """Which of `hashes` already have a parse by this parser (failed ones too, unless asked)."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(list(hashes), 900):
                q = select(Parse.caption_hash).where(
                    Parse.parser_id == parser_id, Parse.caption_hash.in_(chunk)
                )
                if not include_failed:
                    q = q.where(Parse.status == "ok")
                found.update(conn.execute(q).scalars())
        return found

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
        with _transaction(self.engine, conn) as tx:
            tx.execute(stmt, rows)

    def parse_states(self, parser_id: int, hashes: Iterable[str]) -> dict[str, tuple[str, float]]:
        """(status, created_at) of this parser's existing parses among `hashes`."""
        found: dict[str, tuple[str, float]] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(hashes), 900):
                rows = conn.exec_driver_sql(  # plain SQL: this runs once per batch of every re-run
                    f"SELECT caption_hash, status, created_at FROM parses WHERE parser_id = ? "
                    f"AND caption_hash IN ({','.join('?' * len(chunk))})",
                    (parser_id, *chunk),
                )
                found.update((h, (st, t)) for h, st, t in rows)
        return found

    def resolve_parser(self, name: str | None) -> Parser:
        """Pick a parser by fingerprint prefix, backend or label; with no name, the only/latest one."""
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


@contextmanager
def _transaction(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    """The caller's open transaction if given, else a new one committed on exit."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as new:
        yield new


def _on_connect(dbapi_conn, _record) -> None:
    # The sqlite3 module only opens transactions before DML, so a migration's DDL would commit
    # piecemeal; take transaction control away from it and issue BEGIN ourselves (`_on_begin`).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _check_is_sqlite(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise TagparseError(
            f"{path}: cannot read ({e.strerror}); check the path and permissions"
        ) from None
    if head and head != SQLITE_MAGIC:
        raise FormatError(f"{path}: not an SQLite file; pass a tags.db written by tagparse")


def _key_hashes(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(list(keys), 900):
        found.update(
            conn.exec_driver_sql(
                f"SELECT key, caption_hash FROM samples WHERE key IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            ).all()
        )
    return found


def _chunks(seq: Sequence, n: int):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
