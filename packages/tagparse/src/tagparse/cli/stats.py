"""`tagparse stats`: counts, tag coverage and top tags per parser."""

from __future__ import annotations

import click

from tagparse.cli.command import Command
from tagparse.db import TagsDB
from tagparse.numbers import count_range
from tagparse.stats import collect_stats


@click.command(cls=Command)
@click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False), help="tags.db file"
)
@click.option(
    "--top",
    type=count_range(0),
    default=10,
    show_default=True,
    help="how many top tags to list per kind",
)
def stats(db_path: str, top: int) -> None:
    """Show sample counts, share of samples with tags and the top tags of each parser."""
    for line in collect_stats(TagsDB.open(db_path, read_only=True), top).lines():
        click.echo(line)
