"""`tagparse` command line: a thin click layer over the Python API.

Each sub-command lives in its own module and registers itself on `main`; user mistakes raise
`TagparseError`, and OS/SQLite faults (disk full, read-only, locked...) are turned into one by
`tagparse.faults`; both are printed as one `error:` line with exit code 2, never a traceback.
"""

from __future__ import annotations

import os
import sqlite3
import sys

import click
from sqlalchemy.exc import DBAPIError

from tagparse import __version__
from tagparse.errors import TagparseError
from tagparse.faults import user_error

# The command parameters that name the file a command writes, in the order a fault is blamed on.
_FAULT_PATH_PARAMS = ("db_path", "out")


class _Command(click.Command):
    """A sub-command whose user errors and OS/SQLite faults end in one `error:` line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TagparseError as e:
            _fail(e)
        except BrokenPipeError:  # the reader of stdout left (`tagparse export -o - | head`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            sys.exit(1)
        except (OSError, sqlite3.Error, DBAPIError) as e:
            path = next((ctx.params[p] for p in _FAULT_PATH_PARAMS if ctx.params.get(p)), None)
            error = user_error(e, path)
            if error is None:
                raise
            _fail(error)


def _fail(error: TagparseError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Sub-commands are `_Command`s (sub-groups such as `prompts` are `_Group`s, so theirs are
    too); a bad flag or value is one `error:` line as well."""

    command_class = _Command
    group_class = type

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            sub = e.ctx.command_path if e.ctx is not None else ctx.command_path
            hint = f"see `{sub} --help`"
            message = e.format_message().rstrip(".")
            _fail(TagparseError(f"{sub}: {message[:1].lower()}{message[1:]}; {hint}"))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="tagparse")
def main() -> None:
    """Parse image captions into object and attribute tags, stored in a versioned tags.db."""


# Sub-commands register themselves on import.
from tagparse.cli import export as _export  # noqa: F401
from tagparse.cli import merge as _merge  # noqa: F401
from tagparse.cli import prompts as _prompts  # noqa: F401
from tagparse.cli import review as _review  # noqa: F401
from tagparse.cli import run as _run  # noqa: F401
from tagparse.cli import score as _score  # noqa: F401
from tagparse.cli import stats as _stats  # noqa: F401
from tagparse.cli import vocab as _vocab  # noqa: F401
