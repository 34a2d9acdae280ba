"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Every package writes results, caches and checkpoints this way: into a temporary sibling (same
folder, so the final `os.replace` is a rename on one file system), then renamed over the target.
A write that fails removes its temporary, so nothing is left behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(dest: str | os.PathLike[str], directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it replaces `dest`, on error it is removed.

    With `directory=True` the temporary is an empty folder to fill. A folder replaces only a
    missing or empty `dest` (POSIX rename semantics); callers clear an old one first.
    """
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    _remove(tmp)
    if directory:
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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
