"""`tagparse export` and `tagparse import-tagalign`: JSONL and TagAlign's reference tag files."""

from __future__ import annotations

import click

from tagparse.cli.command import Command
from tagparse.db import TagsDB
from tagparse.export import export_jsonl, export_tagalign
from tagparse.fieldoptions import progress_option
from tagparse.tagalign_import import import_tagalign

_FILE = click.Path(dir_okay=False)


@click.command(cls=Command)
@click.option("--db", "db_path", required=True, type=_FILE, help="tags.db file")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "tagalign"]),
    required=True,
    help="jsonl: one line per sample with its tags; tagalign: object_list.csv + object_index.json",
)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(allow_dash=True),
    help="jsonl: output file ('-' for stdout); tagalign: output directory",
)
@click.option(
    "--parser", default=None, help="[jsonl] parser fingerprint prefix or backend (default: latest)"
)
@click.option(
    "--kinds",
    type=click.Choice(["object", "all"]),
    default="object",
    show_default=True,
    help="[tagalign] object tags only, or objects followed by attributes",
)
def export(db_path: str, fmt: str, out: str, parser: str | None, kinds: str) -> None:
    """Export parses (jsonl) or the vocabulary and labels in TagAlign's format (tagalign)."""
    db = TagsDB.open(db_path, read_only=True)
    if fmt == "jsonl":
        n = export_jsonl(db, out, parser)
        if out != "-":
            click.echo(f"wrote {n:,} samples to {out}")
    else:
        n_tags, n_samples = export_tagalign(db, out, kinds)
        click.echo(
            f"wrote {n_tags:,} tags and {n_samples:,} samples' labels to {out}/object_list.csv "
            "and object_index.json"
        )


@click.command("import-tagalign", cls=Command)
@click.option("--db", "db_path", required=True, type=_FILE, help="tags.db to create or add to")
@click.option(
    "--tags",
    "tag_list",
    required=True,
    type=_FILE,
    help="TagAlign's tag list CSV (object_list.csv)",
)
@click.option(
    "--labels",
    "index_json",
    required=True,
    type=_FILE,
    help="TagAlign's JSON {filename: [tag indices]}",
)
@click.option(
    "--captions",
    default=None,
    type=_FILE,
    help="TagAlign's meta CSV (filename,caption) to store real captions beside the tags",
)
@click.option(
    "--basename",
    is_flag=True,
    help="key samples by the file name's basename, as TagAlign's loader does",
)
@progress_option
def import_tagalign_cmd(
    db_path: str,
    tag_list: str,
    index_json: str,
    captions: str | None,
    basename: bool,
    progress: bool,
) -> None:
    """Import TagAlign's published tag files as parses of parser `tagalign-import` plus a
    vocabulary.

    The vocabulary keeps TagAlign's tag indices, so trainers read the same labels as the paper.
    """
    s = import_tagalign(
        db_path, tag_list, index_json, captions=captions, basename=basename, progress=progress
    )
    click.echo(
        f"imported {s.samples:,} samples ({s.new_samples:,} new) with {s.tags:,} tags; "
        f"vocabulary {s.vocab_fingerprint}"
    )
    click.echo(
        f"conflicts: {s.key_conflicts:,} keys already stored with another caption, "
        f"{s.parse_conflicts:,} captions with two tag lists (first kept)"
        + (f"; {s.without_caption:,} samples had no caption in {captions}" if captions else "")
    )
