"""`tagparse run`: parse captions into tags.db (resumable, sharded, multi-process)."""

from __future__ import annotations

import sys

import click
from tqdm import tqdm

from tagparse.backends.options import OpenAIOptions, VLLMOptions
from tagparse.cli.command import Command
from tagparse.errors import TagparseError
from tagparse.fieldoptions import field_options, progress_option
from tagparse.inputs import FORMATS, InputOptions
from tagparse.numbers import count_range
from tagparse.pipeline import DISTRIBUTORS, run_parse

_FILE = click.Path(dir_okay=False)
# Every numeric flag is range-checked: a negative count, a zero batch, a huge count or a NaN/inf
# is a one-line error. The backend flags come from the options dataclasses (`backends.options`).
_AT_LEAST_0 = count_range(0)
_AT_LEAST_1 = count_range(1)


def _parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (0, 1)
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise TagparseError(f"--shard {text!r}: expected I/N, e.g. --shard 0/4") from None
    return i, n


@click.command(cls=Command)
@click.option("--backend", required=True, help="spacy, nltk, openai or vllm")
@click.option(
    "--input",
    "inputs",
    required=True,
    multiple=True,
    help=(
        "caption file(s): csv/tsv/jsonl or webdataset tar; braces like 'shards/{00000..00099}.tar'"
    ),
)
@click.option("--db", "db_path", required=True, type=_FILE, help="tags.db to create or resume")
@click.option(
    "--limit", type=_AT_LEAST_0, default=None, help="stop after N records (of this shard)"
)
@click.option(
    "--chunk-size",
    "--batch-size",
    "batch_size",
    type=_AT_LEAST_1,
    default=256,
    show_default=True,
    help="answers per transaction (at most 5 s apart); not a limit on what is in flight",
)
@click.option(
    "--workers",
    type=_AT_LEAST_1,
    default=1,
    show_default=True,
    help="parser processes (with --distributor ray: Ray actors)",
)
@click.option(
    "--distributor",
    type=click.Choice(DISTRIBUTORS),
    default="local",
    show_default=True,
    help="local: this machine; ray: Ray Data reads and parses, this process writes the tags.db",
)
@click.option(
    "--ray-address",
    default=None,
    help="[ray] join this cluster (HOST:PORT of `ray start --head`, or auto); "
    "default: start a local one with --workers + 1 CPUs",
)
@click.option(
    "--shard",
    default=None,
    help="process only shard I of N (by a stable hash of the key), e.g. 0/4",
)
@click.option(
    "--retry-failed", is_flag=True, help="parse again the captions whose earlier parse failed"
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="input format (default: by extension)",
)
@click.option(
    "--key-column",
    default="filename",
    show_default=True,
    help="CSV column / JSON field with the sample key",
)
@click.option(
    "--caption-column",
    default="caption",
    show_default=True,
    help="CSV column / JSON field with the caption",
)
@field_options(VLLMOptions)
@field_options(OpenAIOptions, ["base_url", "api_key_env"])
@progress_option
def run(
    backend: str,
    inputs: tuple[str, ...],
    db_path: str,
    limit: int | None,
    batch_size: int,
    workers: int,
    distributor: str,
    ray_address: str | None,
    shard: str | None,
    retry_failed: bool,
    fmt: str | None,
    key_column: str,
    caption_column: str,
    progress: bool,
    **backend_options,
) -> None:
    """Parse captions into object and attribute tags, skipping those already in the tags.db.

    Exits 1 when any caption failed to parse (they are recorded; see --retry-failed).
    """
    summary = run_parse(
        db_path,
        list(inputs),
        backend,
        backend_options,
        batch_size=batch_size,
        workers=workers,
        distributor=distributor,
        ray_address=ray_address,
        limit=limit,
        shard=_parse_shard(shard),
        retry_failed=retry_failed,
        progress=progress,
        input_options=InputOptions(fmt, key_column, caption_column),
        on_warning=lambda msg: tqdm.write(f"warning: {msg}", file=sys.stderr),
    )
    for line in summary.lines():
        click.echo(line)
    if not summary.ok:
        sys.exit(1)
