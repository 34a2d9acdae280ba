"""Flags renamed for one release: the old spelling still works, with one warning line.

A flag renamed so that one name has one meaning across the CLIs (docs/cli.md) keeps its old
spelling as a hidden alias: the command line is rewritten before click parses it, so the old
name reaches the same option (its type, its checks), is absent from `--help`, and prints
`warning: --old is now --new; the old name will be removed` on stderr.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click


def renamed_flags(args: Sequence[str], renamed: Mapping[str, str]) -> list[str]:
    """`args` with each old flag (`--old` or `--old=value`, before a `--`) spelled as its new
    name, warning once per old name used."""
    out, warned = [], set()
    for i, arg in enumerate(args):
        if arg == "--":
            return out + list(args[i:])
        old, eq, value = arg.partition("=")
        if old in renamed:
            if old not in warned:
                warned.add(old)
                click.echo(
                    f"warning: {old} is now {renamed[old]}; the old name will be removed", err=True
                )
            arg = renamed[old] + eq + value
        out.append(arg)
    return out


class RenamedFlags(click.Command):
    """A command whose `renamed` flags (old -> new) are accepted under their old spelling."""

    def __init__(self, *args: Any, renamed: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.renamed = dict(renamed or {})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, renamed_flags(args, self.renamed))
