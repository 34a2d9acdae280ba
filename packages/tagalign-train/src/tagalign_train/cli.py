"""`tagalign-train`: a thin click layer over `tagalign_train.train.train`.

The options and their choices come from config.py, which imports no torch: `--help` and a
mistyped choice answer at once.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import MISSING, fields
from pathlib import Path

import click
from tagparse.fieldoptions import progress_option
from tagparse.numbers import number_option
from tagparse.usage import OneLineUsageErrors

from tagalign_train.config import (
    DECODE_ON,
    DENSE_METHODS,
    KIND_FLAGS,
    NUMERIC_BOUNDS,
    PRESETS,
    PROJECTORS,
    TAG_LOSSES,
    TAG_SOFTMAX,
    TEMPLATE_SETS,
    UNLABELED,
    TrainConfig,
)
from tagalign_train.errors import TrainError, faults_as_train_errors

_NONE = {"default": None, "show_default": "preset"}
_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def _choice(flag: str, choices: Iterable[str], **extra) -> Callable:
    """`--flag` with config.py's choices and TrainConfig's default, so neither is re-typed."""
    default = _DEFAULTS[flag.removeprefix("--").replace("-", "_")]
    return click.option(
        flag, type=click.Choice(list(choices)), default=default, show_default=True, **extra
    )


_number = functools.partial(number_option, NUMERIC_BOUNDS)
"""`--flag` range-checked by click against config.NUMERIC_BOUNDS."""


class _OneLineUsageErrors(OneLineUsageErrors, click.Command):
    """A usage mistake (a value out of range, an unknown choice, a missing option) ends in the
    project's one `error:` line and exit code 2 (`tagparse.usage`), like every other user
    error, instead of click's usage block."""

    def main(self, args=None, *rest, **kwargs):
        """`tagalign-train SUBCOMMAND ...` runs a maintenance subcommand; anything else is the
        training command itself, which keeps its bare form (`torchrun -m tagalign_train.cli
        --labels ...`, every existing script)."""
        argv = list(sys.argv[1:] if args is None else args)
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]].main(argv[1:], *rest, **kwargs)
        return super().main(argv, *rest, **kwargs)


class _ConsoleLines(logging.Handler):
    """The run's own progress lines on stdout; every warning (ours, open_clip's, torch's) on
    stderr as one `warning: ...` line, so stderr holds warnings and at most the one error."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            click.echo(f"warning: {record.getMessage()}", err=True)
        elif record.name.startswith("tagalign_train"):  # open_clip's info chatter is left out
            click.echo(record.getMessage())


def _setup_logging() -> None:
    root = logging.getLogger()
    root.handlers[:] = [_ConsoleLines()]
    root.setLevel(logging.INFO)
    warnings.showwarning = _warning_line


def _warning_line(message, category, *_args, **_kwargs) -> None:
    """Python warnings (torch's, open_clip's) as one `warning:` line, not file:line + source."""
    click.echo(f"warning: {category.__name__}: {message}", err=True)


@click.command(cls=_OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--labels",
    required=True,
    type=click.Path(),
    help="tags.db with a vocabulary (`tagparse vocab`).",
)
@click.option(
    "--data",
    "data",
    required=True,
    multiple=True,
    help="webdataset shards (brace patterns, repeatable) or one TagAlign CSV (filename,caption).",
)
@click.option(
    "--out", required=True, type=click.Path(), help="Run directory (checkpoints, metrics.jsonl)."
)
@_choice("--preset", PRESETS)
@click.option("--model", **_NONE, help="open_clip model name or local-dir:PATH.")
@click.option("--pretrained", **_NONE, help="Hub tag (openai, laion2b_...), weights file, or none.")
@_number("--steps", int, **_NONE)
@_number("--batch-size", int, **_NONE, help="Per process (per GPU).")
@_number("--lr", float, **_NONE, help="Base lr at global batch 4096 (scaled linearly).")
@_number("--image-size", int, **_NONE)
@_choice("--dense", DENSE_METHODS)
@_choice("--projector", PROJECTORS)
@_number("--tag-weight", float, default=1.0, show_default=True)
@_number("--itc-weight", float, default=1.0, show_default=True)
@_number(
    "--attribute-weight",
    float,
    default=1.0,
    show_default=True,
    help="Weight of the attribute tags' part of the tag loss (the objects' part has 1).",
)
@_choice("--tag-kinds", KIND_FLAGS)
@_choice("--tag-loss", TAG_LOSSES)
@_choice("--tag-softmax", TAG_SOFTMAX, help="One softmax over all tags (paper) or one per kind.")
@_choice("--templates", TEMPLATE_SETS)
@_number("--workers", int, default=2, show_default=True)
@_choice(
    "--decode-on",
    DECODE_ON,
    help="gpu: decode JPEGs and crop on the GPU, without RandAugment/RandomErasing "
    "(falls back to cpu without CUDA).",
)
@_number("--seed", int, default=0, show_default=True)
@click.option(
    "--resume", is_flag=True, help="Continue exactly from the latest checkpoint in --out."
)
@_number("--accum", int, default=1, show_default=True, help="Gradient accumulation steps.")
@_number("--keep-last", int, default=3, show_default=True, help="0 keeps every checkpoint.")
@_number("--save-every", int, **_NONE)
@_number("--log-every", int, **_NONE)
@click.option(
    "--cache-features", default=None, help="Precompute frozen dense features here; train from them."
)
@_choice("--unlabeled", UNLABELED)
@click.option("--csv-root", default=None, help="Image root for a CSV (default: the CSV's folder).")
@click.option(
    "--text-cache", default=None, help="Tag-embedding cache dir (default ~/.cache/tagalign-train)."
)
@click.option(
    "--report-to",
    default="",
    help="Trackers, comma-separated: tensorboard, wandb, or all (open_clip's flag); each needs "
    "its extra, e.g. tagalign-train[tensorboard].",
)
@click.option(
    "--wandb-project-name", default="tagalign-train", show_default=True, help="wandb project."
)
@progress_option
def main(data, **options) -> None:
    """Train TagAlign's projector on a frozen CLIP with tags from tags.db."""
    from tagalign_train import distributed  # torch is imported after argument parsing
    from tagalign_train.train import train

    _setup_logging()
    try:
        result = train(_config(data, **options))
    except TrainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        distributed.teardown()
    if os.environ.get("RANK", "0") == "0":
        click.echo(f"done: step {result.step}, checkpoint {result.checkpoint}")


def _config(data: tuple[str, ...], **options) -> TrainConfig:
    return TrainConfig(data=list(data), **options)


def config_from_args(args: list[str]) -> TrainConfig:
    """The TrainConfig that `tagalign-train ARGS` would train, parsed by the command's own
    options (choices, ranges, defaults): a program that trains many runs in one process (the
    toy benches) passes the flags a user types and calls `train` on this, without paying a
    fresh interpreter, torch import and model load per run. A bad flag ends as the CLI's one
    `error:` line and SystemExit(2)."""
    with main.make_context("tagalign-train", list(args)) as ctx:
        return _config(**ctx.params)


@click.command(
    "convert-checkpoint",
    cls=_OneLineUsageErrors,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.argument("checkpoint")
@click.option(
    "--trust",
    is_flag=True,
    help="Confirm that you trust where the checkpoint comes from (reading it runs its code).",
)
def convert_checkpoint(checkpoint: str, trust: bool) -> None:
    """Rewrite an old checkpoint's train_state.pt as plain data, so `--resume` can read it
    safely. CHECKPOINT is a run dir (its newest checkpoint) or a checkpoints/step-N folder.

    Only numpy's arrays are admitted besides plain data (a planted object is still refused);
    convert checkpoints you made yourself or whose source you trust."""
    if not trust:
        click.echo(
            f"error: {checkpoint}: converting rewrites the checkpoint's train_state.pt in place; "
            "pass --trust if you made this checkpoint or trust its source",
            err=True,
        )
        sys.exit(2)
    from tagalign_train.checkpoint import convert_train_state

    try:
        done = convert_train_state(Path(checkpoint))
    except TrainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"converted: {done} (train_state.pt now holds plain data only)")


@click.command(
    "push", cls=_OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.argument("run")
@click.option("--repo-id", required=True, help="Hugging Face Hub model repo, ORG/NAME.")
@click.option(
    "--local-dir",
    default=None,
    help="Write the layout into this new folder instead of uploading (loads as local-dir:DIR).",
)
@click.option(
    "--eval-results",
    default=None,
    help="tagalign-eval results.json for the model card's table (default: RUN/results.json).",
)
@click.option("--private", is_flag=True, help="Create the Hub repo as private.")
def push(run: str, repo_id: str, local_dir: str | None, eval_results: str | None, private: bool):
    """Share RUN's newest intact checkpoint (or the checkpoint folder RUN names) as a Hub model
    repo: model.safetensors, config.json, manifest.json and a model card; never
    train_state.pt. Load it with --checkpoint hf-hub:ORG/NAME (or local-dir:DIR)."""
    from tagalign_train.push import shared_files, upload, write_layout

    try:
        with faults_as_train_errors():
            files = shared_files(Path(run), repo_id, Path(eval_results) if eval_results else None)
            if local_dir is not None:
                done = write_layout(files, Path(local_dir))
                click.echo(f"wrote {done} (load it with --checkpoint local-dir:{done})")
                return
            url = upload(files, repo_id, private)
    except TrainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"pushed {url} (load it with --checkpoint hf-hub:{repo_id})")


#: Maintenance subcommands beside the training command (see _OneLineUsageErrors.main).
SUBCOMMANDS: dict[str, click.Command] = {"convert-checkpoint": convert_checkpoint, "push": push}


if __name__ == "__main__":
    main()
