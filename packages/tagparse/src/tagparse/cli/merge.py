"""`tagparse merge`: combine tags.db shards into one file."""

from __future__ import annotations

import click

from tagparse.cli.command import Command
from tagparse.merge import merge_dbs


@click.command(cls=Command)
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="merged tags.db")
def merge(sources: tuple[str, ...], out: str) -> None:
    """Merge tags.db files (e.g. from `tagparse run --shard I/N`) into OUT; conflicts are
    counted."""
    for line in merge_dbs(list(sources), out).lines():
        click.echo(line)
