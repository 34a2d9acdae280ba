"""`tagalign-train`: a thin click layer over `tagalign_train.train.train`.

The options and their choices come from config.py, which imports no torch: `--help` and a
mistyped choice answer at once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import MISSING, fields

import click

from tagalign_train.config import (
    DENSE_METHODS,
    KIND_FLAGS,
    PRESETS,
    PROJECTORS,
    TAG_LOSSES,
    TAG_SOFTMAX,
    TEMPLATE_SETS,
    UNLABELED,
    TrainConfig,
)
from tagalign_train.errors import TrainError

_NONE = {"default": None, "show_default": "preset"}
_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def _choice(flag: str, choices: Iterable[str], **extra) -> Callable:
    """`--flag` with config.py's choices and TrainConfig's default, so neither is re-typed."""
    default = _DEFAULTS[flag.removeprefix("--").replace("-", "_")]
    return click.option(
        flag, type=click.Choice(list(choices)), default=default, show_default=True, **extra
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--labels", required=True, help="tags.db with a vocabulary (`tagparse vocab`).")
@click.option(
    "--data",
    "data",
    required=True,
    multiple=True,
    help="webdataset shards (brace patterns, repeatable) or one TagAlign CSV (filename,caption).",
)
@click.option("--out", required=True, help="Run directory (checkpoints, metrics.jsonl).")
@_choice("--preset", PRESETS)
@click.option("--model", **_NONE, help="open_clip model name or local-dir:PATH.")
@click.option("--pretrained", **_NONE, help="Hub tag (openai, laion2b_...), weights file, or none.")
@click.option("--steps", type=int, **_NONE)
@click.option("--batch-size", type=int, **_NONE, help="Per process (per GPU).")
@click.option("--lr", type=float, **_NONE, help="Base lr at global batch 4096 (scaled linearly).")
@click.option("--image-size", type=int, **_NONE)
@_choice("--dense", DENSE_METHODS)
@_choice("--projector", PROJECTORS)
@click.option("--tag-weight", type=float, default=1.0, show_default=True)
@click.option("--itc-weight", type=float, default=1.0, show_default=True)
@_choice("--tag-kinds", KIND_FLAGS)
@_choice("--tag-loss", TAG_LOSSES)
@_choice("--tag-softmax", TAG_SOFTMAX, help="One softmax over all tags (paper) or one per kind.")
@_choice("--templates", TEMPLATE_SETS)
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--resume", is_flag=True, help="Continue exactly from the latest checkpoint in --out."
)
@click.option(
    "--accum", type=int, default=1, show_default=True, help="Gradient accumulation steps."
)
@click.option("--keep-last", type=int, default=3, show_default=True)
@click.option("--save-every", type=int, **_NONE)
@click.option("--log-every", type=int, **_NONE)
@click.option(
    "--cache-features", default=None, help="Precompute frozen dense features here; train from them."
)
@_choice("--unlabeled", UNLABELED)
@click.option("--csv-root", default=None, help="Image root for a CSV (default: the CSV's folder).")
@click.option(
    "--text-cache", default=None, help="Tag-embedding cache dir (default ~/.cache/tagalign-train)."
)
@click.option("--no-progress", is_flag=True)
def main(data, no_progress, **options) -> None:
    """Train TagAlign's projector on a frozen CLIP with tags from tags.db."""
    from tagalign_train import distributed  # torch is imported after argument parsing
    from tagalign_train.train import train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = train(TrainConfig(data=list(data), progress=not no_progress, **options))
    except TrainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        distributed.teardown()
    if os.environ.get("RANK", "0") == "0":
        click.echo(f"done: step {result.step}, checkpoint {result.checkpoint}")


if __name__ == "__main__":
    main()
