"""Connections to a tags.db: one set of PRAGMAs for every connection tagparse opens.

WAL lets a reviewer's TUI read while a parse run writes; `busy_timeout` makes a second writer
wait instead of failing; `foreign_keys` makes SQLite check the references the schema declares.
Read-only connections skip the journal PRAGMAs: switching the journal mode is a write, and WAL is
stored in the file by the writer that created it, so readers get it anyway.
Connections are in autocommit mode and transactions are explicit (`BEGIN ...`), because the
sqlite3 module would otherwise commit a migration's DDL piecemeal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy
from sqlalchemy import Connection, Engine, event

PRAGMAS = ("foreign_keys=ON", "busy_timeout=30000")
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

    `uri=True` takes a `file:...?mode=ro` URI, for files that must not be written at all.
    """
    con = sqlite3.connect(path, isolation_level=None, uri=uri)
    configure(con, read_only=read_only)
    return con


def engine_for(path: str | Path) -> Engine:
    """A SQLAlchemy engine whose connections carry the same PRAGMAs and explicit BEGIN."""
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", future=True)
    event.listen(engine, "connect", lambda dbapi_con, _record: configure(dbapi_con))
    event.listen(engine, "begin", _begin)
    return engine


def _begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


@contextmanager
def immediate(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error) on an autocommit connection."""
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
