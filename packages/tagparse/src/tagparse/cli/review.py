"""`tagparse review`: the Textual review TUI, or with `--report` the review's figures (no TUI)."""

from __future__ import annotations

import click

from tagparse.cli.command import Command
from tagparse.db import TagsDB
from tagparse.errors import TagparseError
from tagparse.numbers import count_range
from tagparse.review.order import ORDERS
from tagparse.review.report import RENDERERS, build_report, write_verdicts_csv
from tagparse.review.session import DEFAULT_TARGET


@click.command(cls=Command)
@click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False), help="tags.db file"
)
@click.option(
    "--images",
    type=click.Path(),
    default=None,
    help="image folder, folder of webdataset .tar shards, or a tar glob",
)
@click.option(
    "--parser",
    "parsers",
    multiple=True,
    help="review only this parser's tags (fingerprint prefix or backend); repeatable; default all",
)
@click.option("--filter", "tag_filter", default=None, help="only samples with this tag")
@click.option(
    "--order",
    type=click.Choice(ORDERS),
    default="random",
    show_default=True,
    help="sample order; reproducible from --seed",
)
@click.option(
    "--seed", type=count_range(0), default=0, show_default=True, help="seed of the sample order"
)
@click.option(
    "--target",
    type=count_range(1),
    default=DEFAULT_TARGET,
    show_default=True,
    help="samples to review (385 gives ±5 points on a 50% precision)",
)
@click.option(
    "--report", is_flag=True, help="print precision/recall per parser instead of opening the TUI"
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(RENDERERS)),
    default="table",
    show_default=True,
    help="--report output format",
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="with --report: also write every verdict to this CSV file",
)
def review(
    db_path: str,
    images: str | None,
    parsers: tuple[str, ...],
    tag_filter: str | None,
    order: str,
    seed: int,
    target: int,
    report: bool,
    fmt: str,
    export_path: str | None,
) -> None:
    """Spot-check tags sample by sample; verdicts are saved at once and flow into the labels."""
    if report:
        result = build_report(TagsDB.open(db_path, read_only=True), parsers)
        click.echo(RENDERERS[fmt](result))
        if export_path:
            write_verdicts_csv(result, export_path)
            click.echo(f"wrote {len(result.verdicts)} verdicts to {export_path}", err=True)
        return
    try:
        from tagparse.review.app import ReviewApp
    except ImportError as e:
        raise TagparseError(
            f"tagparse review needs the TUI extra ({e.name} is missing): "
            "pip install 'tagparse[review]'"
        ) from None
    from tagparse.review.images import ImageSource, ImageUnavailable
    from tagparse.review.session import ReviewSession

    try:
        source = ImageSource(images) if images else None
    except ImageUnavailable as e:
        raise TagparseError(f"--images {e}") from None
    ReviewApp(
        ReviewSession(
            db_path, parsers=parsers, order=order, seed=seed, tag_filter=tag_filter, target=target
        ),
        source,
    ).run()
