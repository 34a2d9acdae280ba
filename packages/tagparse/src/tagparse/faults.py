"""The one place that turns OS and SQLite faults into a one-line `TagparseError`.

A full disk, a read-only folder, a missing permission or another process holding the lock are
not bugs: the user can fix each of them, so each gets a line that names the file and says what to
do, instead of a traceback. Faults this module does not know stay exceptions (they are bugs).
The CLI applies it to every command (`tagparse.cli`); library callers such as trainers wrap their
own calls in `faults_named(path)`.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from tagparse.db.connection import BUSY_TIMEOUT_MS
from tagparse.errors import TagparseError

# SQLite primary result codes (https://sqlite.org/rescode.html) -> (what happened, what to do)
_SQLITE = {
    3: ("permission denied", "check the file's and the folder's permissions"),
    5: (
        f"locked by another process for over {BUSY_TIMEOUT_MS // 1000} s",
        "wait for the other tagparse command to finish, then re-run",
    ),
    6: ("locked by another connection", "wait for the other command to finish, then re-run"),
    8: (
        "read-only (file, folder or medium)",
        "write to a copy on a writable disk, e.g. pass --db/-o a path there",
    ),
    10: ("disk I/O error", "check the disk (and free space), then re-run"),
    11: ("damaged SQLite file", "restore it from a copy; `sqlite3 FILE .recover` may save rows"),
    13: ("disk full", "free space or write to another disk, then re-run; committed rows are kept"),
    14: ("cannot open", "check that the folder exists and is writable"),
    23: ("not authorised", "check the file's permissions"),
    26: ("not an SQLite file", "pass a tags.db written by tagparse"),
}

_ERRNO = {
    errno.ENOSPC: ("disk full", "free space on that disk or write to another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free space or write to another disk"),
    errno.EFBIG: ("file too large for this file system or limit", "write to another disk"),
    errno.EROFS: ("read-only file system", "write to a path on a writable disk"),
    errno.EACCES: ("permission denied", "check the permissions or choose another path"),
    errno.EPERM: ("operation not permitted", "check the permissions or choose another path"),
    errno.EISDIR: ("is a directory", "pass a file path"),
    errno.ENOTDIR: ("a part of the path is not a directory", "check the path"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EIO: ("I/O error", "check the disk, then re-run"),
}


_READ_ONLY_FOLDER = (
    "its folder is not writable (read-only medium or permissions; SQLite writes beside the file)",
    "write to a copy on a writable disk, e.g. pass --db/-o a path there",
)


def _folder_writable(path: Path) -> bool:
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def _disk_nearly_full(path: Path, margin: int = 1 << 20) -> bool:
    folder = path.absolute().parent
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def user_error(exc: BaseException, path: str | Path | None = None) -> TagparseError | None:
    """The one-line error for an OS or SQLite fault, naming `path` (the file the operation was
    on) or the file the OS names; None when `exc` is not a fault a user can fix."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        known = _SQLITE.get(code & 0xFF) if code is not None else None
        if known is None:
            return None
        what, todo = known
        if code & 0xFF in (8, 14) and path is not None and not _folder_writable(Path(path)):
            what, todo = _READ_ONLY_FOLDER
        elif code & 0xFF == 10 and path is not None and _disk_nearly_full(Path(path)):
            what, todo = _SQLITE[13]  # SQLite reports some writes on a full disk as I/O errors
        return TagparseError(f"{path or 'tags.db'}: {what} ({exc}); {todo}")
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        what, todo = _ERRNO[exc.errno]
        where = exc.filename or path or "a file"
        return TagparseError(f"{where}: {what}; {todo}")
    return None


def write_error(exc: OSError, path: str | Path) -> TagparseError:
    """The one-line error for an OS fault while writing `path`: what the OS said and, for the
    faults of the table above, what to do."""
    todo = _ERRNO.get(exc.errno, (None, "free space or choose a writable path"))[1]
    return TagparseError(f"{path}: cannot write it ({exc.strerror or exc}); {todo}")


@contextmanager
def faults_named(path: str | Path | None = None) -> Iterator[None]:
    """Re-raise OS and SQLite faults inside the block as `user_error(exc, path)`."""
    try:
        yield
    except (OSError, sqlite3.Error, DBAPIError) as e:
        error = user_error(e, path)
        if error is None:
            raise
        raise error from e
