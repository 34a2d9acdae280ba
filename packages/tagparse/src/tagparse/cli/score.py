"""`tagparse score`: precision / recall / F1 of a parser's tags against a FACTUAL-style gold CSV."""

from __future__ import annotations

import json

import click

from tagparse.cli.command import Command
from tagparse.score import score_db


@click.command(cls=Command)
@click.option(
    "--gold",
    "gold_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="gold CSV with `caption` and `scene_graph` columns (FACTUAL format)",
)
@click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False), help="tags.db file"
)
@click.option(
    "--parser", default=None, help="parser fingerprint prefix or backend name (default: latest)"
)
@click.option("--json", "as_json", is_flag=True, help="print the figures as JSON")
def score(gold_path: str, db_path: str, parser: str | None, as_json: bool) -> None:
    """Score parsed object/attribute tags against gold scene graphs (micro set-match P/R/F1)."""
    report = score_db(gold_path, db_path, parser)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.table())
