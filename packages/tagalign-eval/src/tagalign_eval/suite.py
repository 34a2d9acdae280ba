"""Runs a suite of benchmarks from Python; the `tagalign-eval` benchmark commands are a thin layer
over `run_suite`.

    from tagalign_eval import ModelSpec, SuiteRequest, run_suite

    suite = run_suite(SuiteRequest(["voc", "ade20k"], "data/", ModelSpec(checkpoint="runs/cc12m")))
    print(suite.results[0].metrics.miou, suite.table)

The request is checked before anything heavy happens (benchmark names, --data-root, the class
list, every benchmark's files and protocol), so a mistake surfaces as one `EvalError` in seconds,
not after the model is loaded. The model is loaded once and shared by every benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tagalign_train import distributed
from tagalign_train.refs import is_reference
from tagparse.fieldoptions import ranges_of

from tagalign_eval.datasets import (
    BenchmarkNotFound,
    BenchmarkSpec,
    SegDataset,
    classes_from_option,
    get_benchmark,
    open_benchmark,
)
from tagalign_eval.errors import EvalError
from tagalign_eval.evaluate import evaluate
from tagalign_eval.limits import check_range
from tagalign_eval.outputs import check_folder_target
from tagalign_eval.protocols import resolve_protocol
from tagalign_eval.request import ModelSpec, SuiteRequest
from tagalign_eval.result import BenchmarkResult, SuiteResult

__all__ = ["ModelSpec", "SuiteRequest", "pick_device", "run_suite"]


def pick_device(name: str | None = None) -> torch.device:
    """`name` if given (checked: a device type this machine has); else this rank's device under
    torchrun (joining its process group), else cuda if there is one."""
    device = None if name is None else _checked_device(name)
    ddp_device = distributed.init_from_env()
    if ddp_device is not None and device is None:
        return ddp_device
    return device or torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _checked_device(name: str) -> torch.device:
    """`--device NAME` as a torch device, or the one-line error saying what this machine has."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise EvalError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise EvalError(f"--device {name}: no CUDA GPU is visible here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise EvalError(
                f"--device {name}: this machine has {count} CUDA GPU(s), cuda:0 to "
                f"cuda:{count - 1}; pick one of them"
            )
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    raise EvalError(f"--device {name}: not available here; use cpu, cuda or cuda:N")


def run_suite(
    request: SuiteRequest,
    *,
    on_skip: Callable[[str, str], None] | None = None,
    on_result: Callable[[BenchmarkResult], None] | None = None,
) -> SuiteResult:
    """Evaluate `request.model` on every benchmark of `request`.

    `on_skip(name, reason)` is called as a missing benchmark is skipped and `on_result(result)` as
    each benchmark finishes (a long suite can show progress); both run on every torchrun rank.
    Raises `EvalError` for user mistakes, with the message the CLI prints.
    """
    _check_request(request)
    specs = [get_benchmark(b) if isinstance(b, str) else b for b in request.benchmarks]
    datasets, skipped = _open_datasets(specs, request, on_skip)
    protocols = [
        resolve_protocol(request.protocol, d.spec.protocol_family, request.overrides)
        for d in datasets
    ]
    device = pick_device(request.device)
    model = request.model.load(device)
    results = []
    for dataset, protocol in zip(datasets, protocols):
        result = evaluate(
            model,
            dataset,
            protocol,
            device=device,
            images_per_step=request.batch_size,
            crop_batch=request.crop_batch,
            limit=request.limit,
            workers=request.workers,
            save_vis=_picture_dir(request.save_vis, dataset.spec.name, len(datasets)),
            save_pred=_picture_dir(request.save_pred, dataset.spec.name, len(datasets)),
            progress=request.progress,
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return SuiteResult(tuple(results), request.model.label, tuple(skipped))


def _check_request(request: SuiteRequest) -> None:
    """The cheap checks, before any file is read: numbers in range, each benchmark once, the
    picture folders writable, the checkpoint there."""
    for name in ranges_of(SuiteRequest):
        check_range(name, getattr(request, name))
    names = [b if isinstance(b, str) else b.name for b in request.benchmarks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise EvalError(f"benchmark(s) {', '.join(twice)} named twice; name each once")
    for folder, flag in ((request.save_vis, "--save-vis"), (request.save_pred, "--save-pred")):
        if folder:
            check_folder_target(folder, flag)
    checkpoint = request.model.checkpoint
    if checkpoint is not None and not is_reference(checkpoint) and not Path(checkpoint).exists():
        raise EvalError(
            f"--checkpoint {checkpoint} does not exist; pass the --out folder of a "
            "tagalign-train run (or a checkpoint folder or model.safetensors in it)"
        )


def _open_datasets(
    specs: list[BenchmarkSpec],
    request: SuiteRequest,
    on_skip: Callable[[str, str], None] | None,
) -> tuple[list[SegDataset], list[tuple[str, str]]]:
    """Every benchmark's files checked and indexed; missing ones skipped if the request says so."""
    root = request.data_root
    if not root:
        raise EvalError("--data-root is required (the folder that holds VOCdevkit/, ade/, ...)")
    if not Path(root).is_dir():
        raise EvalError(f"--data-root {root} is not a folder")
    classes = None if request.classes is None else classes_from_option(request.classes)
    datasets, skipped = [], []
    for spec in specs:
        try:
            datasets.append(
                open_benchmark(spec, root, classes, strict_labels=not request.ignore_out_of_range)
            )
        except BenchmarkNotFound as exc:
            if not request.skip_missing:
                raise
            skipped.append((spec.name, str(exc)))
            if on_skip is not None:
                on_skip(spec.name, str(exc))
    if not datasets:
        raise EvalError(f"no benchmark found under --data-root {root}")
    return datasets, skipped


def _picture_dir(folder: str | Path | None, benchmark: str, runs: int) -> Path | None:
    """`--save-vis/--save-pred DIR`, with one sub-folder per benchmark when several run."""
    if not folder:
        return None
    return Path(folder) / benchmark if runs > 1 else Path(folder)
