"""The click classes every `tagparse` command is built on: one `error:` line, never a traceback.

A module of its own so that the sub-command modules and the `main` group that collects them
import it, and not each other.
"""

from __future__ import annotations

import os
import sqlite3
import sys

import click
from sqlalchemy.exc import DBAPIError

from tagparse.errors import TagparseError
from tagparse.faults import user_error
from tagparse.usage import OneLineUsageErrors

# The command parameters that name the file a command writes, in the order a fault is blamed on.
_FAULT_PATH_PARAMS = ("db_path", "out")


class Command(click.Command):
    """A sub-command whose user errors and OS/SQLite faults end in one `error:` line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TagparseError as e:
            fail(e)
        except BrokenPipeError:  # the reader of stdout left (`tagparse export -o - | head`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            sys.exit(1)
        except (OSError, sqlite3.Error, DBAPIError) as e:
            path = next((ctx.params[p] for p in _FAULT_PATH_PARAMS if ctx.params.get(p)), None)
            error = user_error(e, path)
            if error is None:
                raise
            fail(error)


def fail(error: TagparseError) -> None:
    """Print `error` as the one `error:` line and exit with code 2."""
    click.echo(f"error: {error}", err=True)
    sys.exit(2)


class Group(OneLineUsageErrors, click.Group):
    """Sub-commands are `Command`s (sub-groups such as `prompts` are `Group`s, so theirs are
    too); a bad flag or value is one `error:` line as well (`tagparse.usage`)."""

    command_class = Command
    group_class = type
