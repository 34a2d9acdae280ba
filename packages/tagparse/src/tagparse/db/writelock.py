"""A fair, bounded write lock shared by every process that writes one tags.db.

SQLite's own busy handler is not fair: a waiting connection sleeps and polls, so a writer that
commits every few milliseconds re-takes the lock before the sleeper wakes, and the sleeper gives
up after the busy timeout (seen with two `tagparse run` on a loaded 2-core box). Writers here
first pass a *turnstile*, then take the *write lock*, then let go of the turnstile:

- the one waiter holding the turnstile is the only one that can take the write lock next: the
  writer that just released it must pass the turnstile again, which that waiter holds, so a
  busy writer can never take the lock twice in a row past a waiting one;
- waiting is bounded by one deadline measured from the first try (`BUSY_TIMEOUT_MS`), not per
  attempt; past it the caller gets SQLite's own `database is locked` error, which tagparse's
  fault table turns into its one `error:` line.

The locks are `flock`s on two small files beside the database (`tags.db-writer`,
`tags.db-turnstile`); `flock` belongs to an open file, so threads of one process queue like
processes. SQLite's locks stay underneath: a writer that does not use this module (the sqlite3
shell) is still waited for by the busy timeout. Where the folder is not writable no lock file
can exist and nothing can be written either, so the lock is skipped.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Suffixes of the lock files next to a tags.db (removed with the file by whoever removes it).
LOCK_SUFFIXES = ("-writer", "-turnstile")
_POLL_S = (0.0005, 0.004)  # jittered sleep between tries while the lock is held elsewhere
_held = threading.local()  # path -> depth: a thread that holds the lock may re-enter it


@contextmanager
def write_lock(db_path: str | Path, timeout_s: float) -> Iterator[None]:
    """Hold the write lock of `db_path` for the body; waits at most `timeout_s` in all."""
    key = os.path.abspath(db_path)
    depth = getattr(_held, "depth", None)
    if depth is None:
        depth = _held.depth = {}
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    try:
        writer = os.open(key + LOCK_SUFFIXES[0], os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            yield  # read-only folder: no writer can run here, SQLite refuses the write itself
            return
        raise
    try:
        _acquire(key, writer, time.monotonic() + timeout_s)
        depth[key] = 1
        try:
            yield
        finally:
            depth[key] = 0
            fcntl.flock(writer, fcntl.LOCK_UN)
    finally:
        os.close(writer)


def _acquire(key: str, writer: int, deadline: float) -> None:
    """Turnstile, then write lock, then release the turnstile (see the module doc)."""
    turnstile = os.open(key + LOCK_SUFFIXES[1], os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _take(turnstile, deadline)
        try:
            _take(writer, deadline)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
    finally:
        os.close(turnstile)


def _take(fd: int, deadline: float) -> None:
    """flock(fd) exclusively, trying until `deadline` (monotonic); `database is locked` after."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                error = sqlite3.OperationalError("database is locked")
                error.sqlite_errorcode = 5  # SQLITE_BUSY: `tagparse.faults` words it as one line
                raise error from None
            time.sleep(random.uniform(*_POLL_S))
