"""Where results go: output paths checked before a long run, and write faults as one line.

A results file that cannot be written should be refused in the first second, not after an hour
of evaluation; and a disk that fills up while pictures are written is the user's to fix, so it
ends in one `error:` line naming the file, never a traceback. The checks and the lines are
tagparse's (`tagparse.writable`, `tagparse.faults`), shared with the other CLIs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tagparse.writable import not_a_folder, write_refusal

from tagalign_eval.errors import EvalError


def check_file_target(path: str | Path, flag: str) -> None:
    """`flag PATH` will be written as a file: it is not a folder, and its folder exists or can
    be created, and is writable."""
    target = Path(path)
    if target.is_dir():
        raise EvalError(f"{flag} {target} is a folder; pass a file path in it")
    _check_writable(target.parent, flag, target)


def check_folder_target(path: str | Path, flag: str) -> None:
    """`flag PATH` will be filled with files: it is a folder, or can be created as one, and is
    writable."""
    target = Path(path)
    refusal = not_a_folder(flag, target)
    if refusal is not None:
        raise EvalError(refusal)
    _check_writable(target, flag, target)


def _check_writable(folder: Path, flag: str, target: Path) -> None:
    refusal = write_refusal(folder)
    if refusal is not None:
        raise EvalError(f"{flag} {target}: {refusal}; choose a path in a writable folder")


@contextmanager
def writing(path: str | Path, flag: str | None = None) -> Iterator[None]:
    """An OS fault (disk full, read-only, permission) writing `path` becomes an `EvalError`
    (the line `tagparse.faults` writes for it)."""
    try:
        yield
    except OSError as exc:
        from tagparse.faults import write_error  # SQLAlchemy's import waits for a fault

        raise EvalError(str(write_error(exc, f"{flag} {path}" if flag else path))) from None
