"""The one-line usage error every CLI of the project prints (tagparse, tagalign-train,
tagalign-eval, tagalign-demo).

A value out of range, an unknown choice or flag, a missing option: click would print its usage
block; the project's promise is one line, `error: <command>: <what>; see `<command> --help``,
and exit code 2. This is the one implementation; each CLI's click classes mix it in.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


def usage_error_line(exc: click.UsageError, fallback: str) -> str:
    """`error: <command>: <message>; see `<command> --help`` for `exc`; `fallback` names the
    command where click did not say which one failed."""
    where = exc.ctx.command_path if exc.ctx is not None else fallback
    message = exc.format_message().rstrip(".")
    return f"error: {where}: {message[:1].lower()}{message[1:]}; see `{where} --help`"


@contextmanager
def one_line_usage_errors(fallback: str) -> Iterator[None]:
    """A click usage mistake inside the block ends in `usage_error_line` and exit code 2; a
    bare group call (no arguments) still shows its help."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as exc:
        click.echo(usage_error_line(exc, fallback), err=True)
        sys.exit(2)


class OneLineUsageErrors:
    """Mix into a `click.Command` or `click.Group` (before it): parsing its own arguments
    (`make_context`) and, for a group, its sub-command's (`invoke`) end in the one line."""

    def make_context(self, info_name: str | None, args: list[str], *rest: Any, **kwargs: Any):
        with one_line_usage_errors(info_name or self.name or "command"):  # type: ignore[attr-defined]
            return super().make_context(info_name, args, *rest, **kwargs)  # type: ignore[misc]

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_usage_errors(ctx.command_path):
            return super().invoke(ctx)  # type: ignore[misc]
