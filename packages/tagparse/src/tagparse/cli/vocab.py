"""`tagparse vocab`: build the top-K vocabulary and the per-sample labels."""

from __future__ import annotations

import click

from tagparse.cli.command import Command
from tagparse.db import TagsDB
from tagparse.numbers import count_range
from tagparse.vocab import build_vocab


@click.command(cls=Command)
@click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False), help="tags.db file"
)
@click.option(
    "--objects",
    "n_objects",
    type=count_range(1),
    default=10000,
    show_default=True,
    help="object vocabulary size K",
)
@click.option(
    "--attributes",
    "n_attributes",
    type=count_range(0),
    default=1000,
    show_default=True,
    help="attribute vocabulary size K (0: objects only)",
)
@click.option(
    "--min-count",
    type=count_range(1),
    default=1,
    show_default=True,
    help="drop tags seen in fewer samples",
)
@click.option(
    "--parser", default=None, help="parser fingerprint prefix or backend name (default: latest)"
)
def vocab(
    db_path: str, n_objects: int, n_attributes: int, min_count: int, parser: str | None
) -> None:
    """Build the top-K object and attribute vocabulary and the labels trainers read."""
    db = TagsDB.open(db_path)
    try:
        summary = build_vocab(db, n_objects, n_attributes, min_count, parser)
    finally:
        db.close()
    click.echo(
        f"parser {summary.parser_label}: {summary.labelled}/{summary.samples} samples labelled"
    )
    click.echo(
        f"vocabulary {summary.fingerprint}: {summary.sizes['object']} objects, "
        f"{summary.sizes['attribute']} attributes"
    )
    for kind in ("object", "attribute"):
        top = ", ".join(f"{t} ({c})" for t, c in summary.top[kind][:10])
        click.echo(f"top {kind}s: {top}")
