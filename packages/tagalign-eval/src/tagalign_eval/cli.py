"""`tagalign-eval`: a thin click layer over `run_suite`, `predict`, `classify`, `retrieval` and
`prepare`.

Every registered benchmark is a sub-command (`tagalign-eval voc ...`); `all` runs the standard ten
(skipping those not under --data-root), `custom` takes any folder of images + masks + class file.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tagparse.fieldoptions import field_options, fields_of, progress_option
from tagparse.numbers import number_option
from tagparse.renamed import RenamedFlags
from tagparse.usage import OneLineUsageErrors, one_line_usage_errors

from tagalign_eval.errors import EvalError
from tagalign_eval.limits import RANGES
from tagalign_eval.outputs import check_file_target, check_folder_target
from tagalign_eval.pooling import POOLINGS
from tagalign_eval.prepare import PREPARERS
from tagalign_eval.prepare import run as prepare_benchmark
from tagalign_eval.protocol import Protocol
from tagalign_eval.request import CHECKPOINT_HELP, DEVICE_HELP, ModelSpec, SuiteRequest
from tagalign_eval.templates import DEFAULT_TEMPLATES, read_templates

if TYPE_CHECKING:
    from tagalign_eval.datasets import BenchmarkSpec
    from tagalign_eval.result import BenchmarkResult


_number = functools.partial(number_option, RANGES)
"""`--flag`, range-checked at parse time from `limits.RANGES` (a bad value is one line)."""

_FOLDER = click.Path(exists=True, file_okay=False)
_FILE = click.Path(exists=True, dir_okay=False)


def user_errors(fn: Callable) -> Callable:
    """Print `error: <message>` and exit 2 for user mistakes; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EvalError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


#: `--checkpoint`, as every command that evaluates a trained run spells it.
CHECKPOINT_OPTION = click.option("--checkpoint", type=click.Path(), help=CHECKPOINT_HELP)
DEVICE_OPTION = click.option("--device", default=None, help=DEVICE_HELP)


def _stacked(*decorators: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
    """One decorator applying `decorators` so that their options list in the order given."""

    def decorate(fn: Callable) -> Callable:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return decorate


#: What is evaluated: the `ModelSpec` fields, and where it runs.
model_options = _stacked(field_options(ModelSpec), field_options(SuiteRequest, ["device"]))
#: The named protocol and the `Protocol` fields that override its values (unset: the preset's).
protocol_options = _stacked(
    field_options(SuiteRequest, ["protocol"]), field_options(Protocol, unset=True)
)
#: The rest of a `SuiteRequest`, and the result files.
run_options = _stacked(
    field_options(SuiteRequest, ["data_root", "classes"]),
    click.option("--out", type=click.Path(), help="Results JSON to write."),
    click.option("--markdown", type=click.Path(), help="Markdown table to write."),
    field_options(
        SuiteRequest,
        ["batch_size", "crop_batch", "workers", "limit", "save_vis", "save_pred"],
    ),
    field_options(SuiteRequest, ["ignore_out_of_range", "progress"]),
)


def _overrides(kw: dict[str, Any]) -> dict[str, Any]:
    """The protocol flags given, keyed by `Protocol` field (an unset one is None or ())."""
    return {k: v for k, v in fields_of(Protocol, kw).items() if v is not None and v != ()}


def _model_spec(kw: dict[str, Any]) -> ModelSpec:
    return ModelSpec(**fields_of(ModelSpec, kw))


def run_benchmarks(
    benchmarks: list[str | BenchmarkSpec], kw: dict[str, Any], *, skip_missing: bool = False
) -> None:
    """Shared body of the benchmark commands: the options as a `SuiteRequest`, `run_suite`, then
    the lines, the table and the files (on the main rank only under torchrun)."""
    from tagalign_train import distributed

    from tagalign_eval import report
    from tagalign_eval.suite import run_suite

    request = _suite_request(benchmarks, kw, skip_missing)
    _check_result_files(kw["out"], kw["markdown"])
    suite = run_suite(request, on_skip=_print_skip, on_result=_print_result)
    if not distributed.is_main():
        return
    click.echo(suite.table)
    if kw["out"]:
        report.write_results(kw["out"], suite)
        click.echo(f"wrote {kw['out']}")
    if kw["markdown"]:
        report.write_markdown(kw["markdown"], suite)


def _suite_request(
    benchmarks: list[str | BenchmarkSpec], kw: dict[str, Any], skip_missing: bool
) -> SuiteRequest:
    """The benchmark commands' options as the `SuiteRequest` they run."""
    return SuiteRequest(
        benchmarks=benchmarks,
        model=_model_spec(kw),
        overrides=_overrides(kw),
        skip_missing=skip_missing,
        **fields_of(SuiteRequest, kw),
    )


def _check_result_files(out: str | None, markdown: str | None) -> None:
    """--out and --markdown refused up front (before the model loads), not after the run."""
    for path, flag in ((out, "--out"), (markdown, "--markdown")):
        if path:
            check_file_target(path, flag)
    if out and markdown and Path(out).absolute() == Path(markdown).absolute():
        raise EvalError(f"--out and --markdown are the same file {out}; give two paths")


def _print_skip(benchmark: str, reason: str) -> None:
    click.echo(f"warning: skip {benchmark}: {reason}", err=True)


def _print_result(result: BenchmarkResult) -> None:
    from tagalign_train import distributed

    from tagalign_eval.report import out_of_range_warning, protocol_banner, result_line

    if not distributed.is_main():
        return
    click.echo(protocol_banner(result))
    click.echo(result_line(result))
    if result.out_of_range_labels:
        click.echo(out_of_range_warning(result), err=True)


class BenchmarkGroup(OneLineUsageErrors, click.Group):
    """Adds one sub-command per registered benchmark, including ones registered by plugins;
    usage mistakes in any sub-command are one `error:` line (`tagparse.usage`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from tagalign_eval.datasets import benchmark_names

        return sorted(super().list_commands(ctx)) + benchmark_names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        from tagalign_eval.datasets import benchmark_names

        return _benchmark_command(name) if name in benchmark_names() else None


@click.group(cls=BenchmarkGroup)
@click.version_option(package_name="tagalign-eval")
def main() -> None:
    """Zero-shot semantic segmentation benchmarks and single-image prediction for TagAlign."""


def _benchmark_command(name: str) -> click.Command:
    @click.command(name=name, help=f"Evaluate on the {name} benchmark.")
    @model_options
    @protocol_options
    @run_options
    @user_errors
    def command(**kw: Any) -> None:
        run_benchmarks([name], kw)

    return command


@main.command("all")
@click.option("--benchmarks", help="Comma list (default: the standard ten).")
@model_options
@protocol_options
@run_options
@user_errors
def all_command(benchmarks: str | None, **kw: Any) -> None:
    """Evaluate on every benchmark found under --data-root; prints the paper-order table."""
    run_benchmarks(_all_names(benchmarks), kw, skip_missing=True)


def _all_names(benchmarks: str | None) -> list[str]:
    """`all --benchmarks`'s comma list, or the standard ten."""
    from tagalign_eval.datasets import PAPER_ORDER

    return [n.strip() for n in benchmarks.split(",")] if benchmarks else list(PAPER_ORDER)


def request_from_args(args: list[str]) -> SuiteRequest:
    """The `SuiteRequest` that `tagalign-eval all ARGS` would run, parsed by the command's own
    options: a program that evaluates many models in one process (the toy benches) passes the
    flags a user types and calls `run_suite` on this, without a fresh interpreter per model.
    `--out`/`--markdown` are not written (the caller has the `SuiteResult`). A bad flag ends as
    the CLI's one `error:` line and SystemExit(2)."""
    with (
        one_line_usage_errors("tagalign-eval all"),
        all_command.make_context("tagalign-eval all", list(args)) as ctx,
    ):
        kw = dict(ctx.params)
    return _suite_request(_all_names(kw.pop("benchmarks")), kw, skip_missing=True)


@main.command("custom")
@click.option("--images", required=True, type=_FOLDER, help="Folder of images.")
@click.option("--masks", required=True, type=_FOLDER, help="Folder of masks (same stems).")
@click.option("--class-file", required=True, type=_FILE, help="One class per line.")
@click.option("--img-suffix", default=".jpg", show_default=True)
@click.option("--ann-suffix", default=".png", show_default=True)
@click.option("--reduce-zero-label", is_flag=True, help="Mask value 0 is ignored, v -> v-1.")
@_number("--ignore-index", int, default=255, show_default=True)
@model_options
@protocol_options
@run_options
@user_errors
def custom_command(
    images, masks, class_file, img_suffix, ann_suffix, reduce_zero_label, ignore_index, **kw: Any
) -> None:
    """Evaluate on any folder of images + masks + class file (palette or grey PNG masks)."""
    from tagalign_eval.datasets import BenchmarkSpec

    root = Path(images).resolve().parent
    kw["data_root"] = kw["data_root"] or str(root)
    spec = BenchmarkSpec(
        name="custom",
        root=".",
        img_dir=str(Path(images).resolve()),
        ann_dir=str(Path(masks).resolve()),
        classes=str(Path(class_file).resolve()),
        img_suffix=img_suffix,
        ann_suffix=ann_suffix,
        reduce_zero_label=reduce_zero_label,
        ignore_index=ignore_index,
        title="Custom",
    )
    run_benchmarks([spec], kw)


@main.command("predict")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "--classes",
    "classes_opt",
    required=True,
    help='Comma list ("cat,black cat,sofa") or class file; "background" first for a '
    "protocol background. A value with a / or ending in .txt is a file and must exist.",
)
@click.option("--out", required=True, type=click.Path(), help="Output folder.")
@model_options
@protocol_options
@field_options(SuiteRequest, ["crop_batch"])
@user_errors
def predict_command(images, classes_opt, out, **kw: Any) -> None:
    """Segment images with a free-text class list: overlay PNG, legend panel, per-class masks."""
    from tagalign_eval.datasets import classes_from_option
    from tagalign_eval.predict import check_images, predict_images
    from tagalign_eval.protocols import resolve_protocol
    from tagalign_eval.suite import pick_device

    protocol = resolve_protocol(kw["protocol"], None, _overrides(kw))
    classes = classes_from_option(classes_opt)
    check_images([Path(p) for p in images])
    check_folder_target(out, "--out")
    device = pick_device(kw["device"])
    model = _model_spec(kw).load(device)
    for written in predict_images(
        model,
        [Path(p) for p in images],
        classes,
        protocol,
        Path(out),
        device=device,
        crop_batch=kw["crop_batch"],
    ):
        click.echo(f"wrote {written}")


def global_task_options(fn: Callable) -> Callable:
    """The options `classify` and `retrieval` share: the two compared models and the run."""
    return _stacked(
        CHECKPOINT_OPTION,
        click.option(
            "--clip-model", help="Plain CLIP to compare: an open_clip model name or local-dir:DIR."
        ),
        click.option(
            "--pretrained",
            default="openai",
            show_default=True,
            help="Weights of --clip-model: an open_clip tag, a weights file or none.",
        ),
        DEVICE_OPTION,
        _number("--batch-size", int, default=64, show_default=True, help="Images per step."),
        _number("--workers", int, default=2, show_default=True, help="Image-decoding workers."),
        click.option(
            "--pooling",
            type=click.Choice(POOLINGS),
            default="patch-mean",
            show_default=True,
            help="A checkpoint's whole-image embedding: the projected patches' mean (training's), "
            "its frozen CLIP's class token through the trained head, or the patches weighted by "
            "their agreement with CLIP's embedding.",
        ),
        click.option("--out", type=click.Path(), help="Results JSON to write."),
        progress_option,
    )(fn)


#: Old spellings of `classify`'s and `retrieval`'s flags, kept for one release (docs/cli.md): one
#: flag name has one meaning across the CLIs.
RENAMED = {"--model": "--clip-model"}
CLASSIFY_RENAMED = {**RENAMED, "--classes": "--class-map", "--templates": "--template-file"}


def _run_global_task(task: Callable[..., Any], inputs: Any, kw: dict[str, Any], **extra) -> None:
    """Shared body of `classify` and `retrieval`: --out refused up front, the task run, its
    table printed and its results written."""
    from tagalign_eval.scores import write_json

    out = kw.pop("out")
    if out:
        check_file_target(out, "--out")
    result = task(inputs, **kw, **extra)
    click.echo(result.table, nl=False)
    if out:
        write_json(out, result.to_dict())
        click.echo(f"wrote {out}")


@main.command("classify", cls=RenamedFlags, renamed=CLASSIFY_RENAMED)
@click.argument("root", type=click.Path())
@click.option(
    "--class-map",
    "classes",
    type=click.Path(),
    help="Folder -> class name mapping (FOLDER<tab>NAME lines or a JSON object); default: the "
    "folder names.",
)
@click.option(
    "--template",
    "templates",
    multiple=True,
    help=f"Prompt template with {{}} (repeat to ensemble; default {DEFAULT_TEMPLATES[0]!r}).",
)
@click.option("--template-file", type=click.Path(), help="One prompt template per line.")
@global_task_options
@user_errors
def classify_command(root, templates, template_file, **kw: Any) -> None:
    """Zero-shot top-1/top-5 accuracy on an image folder (ROOT/CLASS/*.jpg|png)."""
    from tagalign_eval.classify import classify

    prompts = list(templates) + (
        read_templates(template_file, "--template-file") if template_file else []
    )
    _run_global_task(classify, root, kw, templates=prompts or DEFAULT_TEMPLATES)


@main.command("retrieval", cls=RenamedFlags, renamed=RENAMED)
@click.argument("pairs", nargs=-1, required=True, type=click.Path())
@global_task_options
@user_errors
def retrieval_command(pairs, **kw: Any) -> None:
    """Zero-shot image<->text recall@1/5/10 on (image, caption) pairs (.jsonl or .csv files)."""
    from tagalign_eval.retrieval import retrieval

    _run_global_task(retrieval, list(pairs), kw)


@main.command("prepare")
@click.argument("benchmark", type=click.Choice(list(PREPARERS)))
@click.option("--data-root", required=True, type=click.Path(), help="Folder holding the raw data.")
@click.option("--split", default=None, help="Split folder (default val2017 / val).")
@user_errors
def prepare_command(benchmark: str, data_root: str, split: str | None) -> None:
    """Convert raw annotations into the layout the evaluator reads."""
    written = prepare_benchmark(benchmark, Path(data_root), split)
    click.echo(f"{benchmark}: wrote {written} masks")


if __name__ == "__main__":  # `torchrun -m tagalign_eval.cli ...`
    main()
