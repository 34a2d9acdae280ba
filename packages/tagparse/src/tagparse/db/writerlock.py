"""`WriterLock`: writers of one tags.db take turns through `flock` on `<db>.lock`, with a deadline.

SQLite's busy handler is not fair: a waiting writer sleeps (up to 100 ms a time) and polls, so a
writer that commits every few milliseconds can win every race and keep another waiting past any
timeout (issue 24: two `tagparse run` shards, one gave up after 30 s). A writer blocked in
`flock` is woken by the kernel the moment the lock is released, and every release wakes every
waiter, so a process that holds the lock only for its commits cannot starve the others. The wait
is bounded: after `timeout` seconds from the first try it ends as SQLite's own `database is
locked` error (code 5), which `tagparse.faults` turns into one `error:` line.

The lock is advisory and only between tagparse writers; SQLite's locking still protects the file
from every other program. A crashed writer's lock goes with its process (the kernel drops it).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WriterLock:
    def __init__(self, db_path: Path, timeout: float):
        self.path = Path(f"{db_path}.lock")
        self.timeout = timeout
        self.longest_wait = 0.0  # seconds, the longest this process waited (for tests/benches)

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._acquire(fd)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _acquire(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        start = time.monotonic()
        if not _Waiter(self.path).wait(fd, self.timeout):
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = 5  # SQLITE_BUSY, worded by tagparse.faults
            raise error
        self.longest_wait = max(self.longest_wait, time.monotonic() - start)


class _Waiter:
    """A blocking `flock` in a helper thread, so that the caller can stop waiting at a deadline.

    It blocks on a duplicate of the caller's descriptor (the same open file, so the same lock).
    A waiter that is given up on still gets the lock some time later and drops it at once; the
    caller has closed its own descriptor by then.
    """

    def __init__(self, path: Path):
        self.path = path
        self.got = threading.Event()
        self.mutex = threading.Lock()
        self.abandoned = False

    def wait(self, fd: int, timeout: float) -> bool:
        own = os.dup(fd)  # shares fd's lock (one open file description) until given up on
        thread = threading.Thread(target=self._block, args=(own,), daemon=True)
        thread.start()
        if self.got.wait(timeout):
            return True
        with self.mutex:
            if self.got.is_set():
                return True
            self.abandoned = True
        return False

    def _block(self, own: int) -> None:
        try:
            fcntl.flock(own, fcntl.LOCK_EX)
            with self.mutex:
                if self.abandoned:
                    fcntl.flock(own, fcntl.LOCK_UN)
                else:
                    self.got.set()
        finally:
            os.close(own)
