"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Every package writes results, caches and checkpoints this way: into a temporary sibling (same
folder, so the final `os.replace` is a rename on one file system), then renamed over the target.
A write that fails removes its temporary, so nothing is left behind. A write that is SIGKILLed
cannot: its temporary folder (a half-built feature cache can be hundreds of GB) is removed by the
next write of the same folder target, which sweeps the temporaries of writers that are dead. Only
folder targets sweep: the sweep lists the parent folder, and file targets are written by the
thousand into one folder (`tagalign-eval prepare`'s masks), where a listing per file would make
the conversion quadratic. The temporary's
name carries the writer's host and pid (`.NAME.tmp-HOST-PID`), so a write on one node of a shared
file system never removes the live temporary of another node's writer.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# the writer's host in temporaries' names, without the "-" that separates it from the pid
_HOST = socket.gethostname().replace("-", "_") or "localhost"


@contextmanager
def atomic_path(dest: str | os.PathLike[str], directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it replaces `dest`, on error it is removed.

    With `directory=True` the temporary is an empty folder to fill. A folder replaces only a
    missing or empty `dest` (POSIX rename semantics); callers clear an old one first.
    """
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{_HOST}-{os.getpid()}")
    _remove(tmp)
    if directory:
        remove_dead_temporaries(dest)
        tmp.mkdir(parents=True)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `dest` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_dead_temporaries(dest: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries of `dest` that writers on this host left when they were killed.

    Returns what was removed. A temporary of a live process, of another host, or of a name this
    module did not make is left alone. `.NAME.tmp-PID` (the name before the host was added)
    counts as this host's.
    """
    dest = Path(dest)
    removed = []
    for path in dest.parent.glob(f".{glob.escape(dest.name)}.tmp-*"):
        writer = path.name.removeprefix(f".{dest.name}.tmp-")
        host, _, pid = writer.rpartition("-")
        if pid.isdigit() and host in ("", _HOST) and not _alive(int(pid)):
            _remove(path)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
