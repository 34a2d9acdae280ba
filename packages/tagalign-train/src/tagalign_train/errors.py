"""The one error class for user mistakes in tagalign-train; the CLI prints it as `error: <msg>`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class TrainError(Exception):
    """Bad input (file, flag, checkpoint) described in one line that says what to do."""


@contextmanager
def faults_as_train_errors() -> Iterator[None]:
    """Re-raise a fault the user can fix (disk full, read-only folder, permission denied, a
    locked tags.db) as a TrainError naming the file, using tagparse's one table of them
    (`tagparse.faults`); other exceptions are bugs and stay as they are."""
    from tagparse.faults import user_error  # imported late: config.py must stay light

    try:
        yield
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        raise TrainError(str(error)) from exc


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of a third-party exception's message (its type's name if it has none),
    cut to `limit` characters: enough to say what failed inside one `error:` line."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
