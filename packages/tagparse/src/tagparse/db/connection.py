"""Connections to a tags.db: one set of PRAGMAs for every connection tagparse opens.

WAL lets a reviewer's TUI read while a parse run writes; `busy_timeout` makes a second writer
wait instead of failing; `foreign_keys` makes SQLite check the references the schema declares.
Read-only connections open the file through a `mode=ro` URI and skip the journal PRAGMAs
(switching the journal mode is a write; WAL is stored in the file, so readers get it anyway).
On read-only media a WAL file cannot get its `-shm` index, so there the URI adds `immutable=1`.
Connections are in autocommit mode and transactions are explicit: `BEGIN IMMEDIATE` for writes
(a deferred transaction that reads first cannot wait for another writer's lock: SQLite answers
`database is locked` at once), plain `BEGIN` for reads; the sqlite3 module would otherwise also
commit a migration's DDL piecemeal.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import sqlalchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import QueuePool

from tagparse.db.writelock import write_lock
from tagparse.errors import TagparseError

BUSY_TIMEOUT_MS = 30000
PRAGMAS = ("foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}")
WRITER_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL")

# SQLite allows 999 bound parameters per statement in older builds; `IN (...)` lists stay below.
CHUNK = 900

T = TypeVar("T")


def configure(con: sqlite3.Connection, *, read_only: bool = False) -> None:
    """Autocommit mode plus the PRAGMAs; applied to every new connection, plain or SQLAlchemy's."""
    con.isolation_level = None
    for pragma in PRAGMAS + (("query_only=1",) if read_only else WRITER_PRAGMAS):
        con.execute(f"PRAGMA {pragma}")


def connect(path: str | Path, *, read_only: bool = False, uri: bool = False) -> sqlite3.Connection:
    """A plain sqlite3 connection (bulk reads and set-based writes skip the ORM's overhead).

    `read_only` opens `path` through `read_only_uri`, so nothing, not even a `-shm`, is written
    where that is impossible; `uri=True` takes a ready `file:...` URI instead of a path.
    """
    if read_only and not uri:
        path, uri = read_only_uri(path), True
    con = sqlite3.connect(path, isolation_level=None, uri=uri)
    configure(con, read_only=read_only)
    return con


def read_only_uri(path: str | Path) -> str:
    """A `file:` URI that opens `path` read-only, also on read-only media.

    WAL readers need the `-shm` index next to the file; where the folder is not writable and no
    `-shm` exists, `immutable=1` reads the file as it is. That is safe only when no committed
    rows wait in a `-wal` file (no writer can run on such media anyway), which is checked.
    """
    path = Path(path).absolute()
    base = f"file:{quote(str(path))}?mode=ro"
    shm, wal = Path(f"{path}-shm"), Path(f"{path}-wal")
    if os.access(path.parent, os.W_OK) or shm.exists():
        return base
    if wal.exists() and wal.stat().st_size > 0:
        raise TagparseError(
            f"{path}: committed rows wait in {wal.name} and the folder is read-only; "
            "copy the folder to a writable disk and open the copy"
        )
    return base + "&immutable=1"


def engine_for(path: str | Path, *, read_only: bool = False) -> Engine:
    """A SQLAlchemy engine whose connections carry the same PRAGMAs and explicit BEGIN.

    Transactions of `writes(engine)` start with `BEGIN IMMEDIATE` (see the module doc).
    """
    if read_only:
        uri = read_only_uri(path)
        engine = sqlalchemy.create_engine(
            "sqlite://", creator=lambda: connect(uri, read_only=True, uri=True), poolclass=QueuePool
        )
    else:
        engine = sqlalchemy.create_engine(f"sqlite:///{path}", future=True)
        event.listen(engine, "connect", lambda dbapi_con, _record: configure(dbapi_con))
    event.listen(engine, "begin", _begin)
    return engine


def writes(engine: Engine) -> Engine:
    """The same engine, its transactions taking the write lock up front (`BEGIN IMMEDIATE`)."""
    return engine.execution_options(tagparse_write=True)


def _begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("tagparse_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def checkpoint(path: str | Path) -> None:
    """Move committed rows from `-wal` into the file itself and empty the `-wal`.

    Called when a writer finishes, so that copying tags.db alone copies every row. A reader that
    holds an old snapshot makes SQLite skip the truncation (after a short wait); that is fine,
    the next writer's checkpoint does it. A checkpoint that fails (a full disk) loses nothing
    either: the rows stay in `-wal`, so it never hides the error that ended the command.
    """
    try:
        con = sqlite3.connect(path, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=2000")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    except sqlite3.Error:
        pass


@contextmanager
def immediate(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error) on an autocommit connection, under
    the fair write lock of its main database file (`writelock`), like `TagsDB.transaction`."""
    main_file = con.execute("PRAGMA database_list").fetchone()[2]  # "" for an in-memory db
    with write_lock(main_file, BUSY_TIMEOUT_MS / 1000) if main_file else nullcontext():
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def chunks(seq: Sequence[T], n: int = CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most `n` items, for `IN (...)` lists."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def marks(n: int) -> str:
    """`?,?,?` for `n` bound parameters."""
    return ",".join("?" * n)


def id_list(ids: Sequence[int]) -> str:
    """Integer ids inlined into SQL (safe: each is passed through `int`)."""
    return ",".join(str(int(i)) for i in ids)
