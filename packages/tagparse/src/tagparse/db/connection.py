"""Connections to a tags.db: one set of PRAGMAs, one `Store` that runs every statement, one
transaction helper.

WAL lets a reviewer's TUI read while a parse run writes; `busy_timeout` makes a writer wait for a
program that is not tagparse; `foreign_keys` makes SQLite check the references the schema
declares. Read-only connections open the file through a `mode=ro` URI and skip the journal
PRAGMAs (switching the journal mode is a write; WAL is stored in the file, so readers get it
anyway). On read-only media a WAL file cannot get its `-shm` index, so there the URI adds
`immutable=1`. Connections are in autocommit mode and transactions are explicit: `BEGIN
IMMEDIATE` for writes (a deferred transaction that reads first cannot wait for another writer's
lock: SQLite answers `database is locked` at once); reads are single statements in autocommit
mode. The sqlite3 module would otherwise also commit a migration's DDL piecemeal.

Writers take the fair write lock (`writelock`: a turnstile, then the write lock) before `BEGIN
IMMEDIATE`: SQLite's own busy handler sleeps and polls, so a writer that commits every few
milliseconds can keep another waiting past any timeout.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from tagparse.db.sql import BEGIN_IMMEDIATE, COMMIT, ROLLBACK, WAL_CHECKPOINT, pragma
from tagparse.db.writelock import write_lock
from tagparse.errors import TagparseError

BUSY_TIMEOUT_MS = 30000
PRAGMAS = ("foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}")
WRITER_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL")

# SQLite allows 999 bound parameters per statement in older builds; `IN (...)` lists stay below.
CHUNK = 900

T = TypeVar("T")


def configure(con: sqlite3.Connection, *, read_only: bool = False) -> None:
    """Autocommit mode plus the PRAGMAs; applied to every connection tagparse opens."""
    con.isolation_level = None
    for setting in PRAGMAS + (("query_only=1",) if read_only else WRITER_PRAGMAS):
        con.execute(pragma(setting))


def connect(path: str | Path, *, read_only: bool = False, uri: bool = False) -> sqlite3.Connection:
    """A sqlite3 connection with the PRAGMAs.

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


class Store:
    """The one connection of a `TagsDB`, `VerdictStore` or `MergeTarget`, and its transactions.

    The connection opens on first use and again after `close()`, so an object that was closed
    can still answer a late question (the review session resolves parser names after closing).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._con: sqlite3.Connection | None = None
        self._depth = 0  # nesting of `transaction()`: inner ones join the outer one

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = connect(self.path, read_only=self.read_only)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def checkpoint(self) -> None:
        """Move committed rows from `-wal` into the file itself and empty the `-wal`.

        Called when a writer finishes, so that copying tags.db alone copies every row. A reader
        that holds an old snapshot makes SQLite skip the truncation (after a short wait); that is
        fine, the next writer's checkpoint does it. A checkpoint that fails (a full disk) loses
        nothing either: the rows stay in `-wal`, so it never hides the error that ended the
        command. Call `close()` after it (the short busy timeout stays on the connection).
        """
        try:
            self.execute(pragma("busy_timeout=2000"))
            self.execute(WAL_CHECKPOINT)
        except sqlite3.Error:
            pass

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.con.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self.con.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """A write transaction: all statements inside commit together or none (ROLLBACK on any
        error). Reads outside one run in autocommit, each statement on its own snapshot.

        It first waits its turn for the fair write lock (`writelock`, bounded by the busy
        timeout, measured from the first try), then takes SQLite's lock up front with `BEGIN
        IMMEDIATE`; both are released at COMMIT, so callers keep the work between commits
        (parsing a batch) outside. A transaction opened inside another joins it.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        con = self.con  # opened first: a file SQLite cannot write fails as it always did
        with write_lock(self.path, BUSY_TIMEOUT_MS / 1000):
            con.execute(BEGIN_IMMEDIATE)
            self._depth = 1
            try:
                yield self
                con.execute(COMMIT)
            except BaseException:
                if con.in_transaction:  # SQLite may have rolled back already (disk full)
                    con.execute(ROLLBACK)
                raise
            finally:
                self._depth = 0


def chunks(seq: Sequence[T], n: int = CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most `n` items, for `IN (...)` lists."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
