"""How results are shown and kept: the lines printed per benchmark, the Markdown table in the
paper's column order with averages, and the files (results.json with every benchmark's record,
the table alone)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tagparse.atomic import atomic_write_text

from tagalign_eval.datasets import PAPER_EIGHT, PAPER_ORDER, get_benchmark
from tagalign_eval.errors import EvalError
from tagalign_eval.outputs import writing
from tagalign_eval.protocols import OPENAI_TEMPLATES
from tagalign_eval.result import BenchmarkResult

if TYPE_CHECKING:
    from tagalign_eval.suite import SuiteResult


def _title(name: str) -> str:
    try:
        return get_benchmark(name).title or name
    except EvalError:  # a benchmark registered by a plugin that is gone: show its name
        return name


def _miou(result: BenchmarkResult) -> float:
    value = result.metrics.miou
    return float("nan") if value is None else float(value)


def markdown_table(results: Sequence[BenchmarkResult], label: str = "model") -> str:
    """One row of mIoU per run; paper columns first, then any other benchmark, then averages."""
    by_name = {r.benchmark: r for r in results}
    names = [n for n in PAPER_ORDER if n in by_name] + [n for n in by_name if n not in PAPER_ORDER]
    header = ["", *(_title(n) for n in names), "Avg"]
    cells = [label, *(f"{_miou(by_name[n]):.1f}" for n in names)]
    values = [_miou(by_name[n]) for n in names if not math.isnan(_miou(by_name[n]))]
    cells.append(f"{sum(values) / len(values):.1f}" if values else "-")
    if all(n in by_name for n in PAPER_EIGHT) and len(names) > len(PAPER_EIGHT):
        eight = [_miou(by_name[n]) for n in PAPER_EIGHT]
        header.append("Avg (paper 8)")
        cells.append(f"{sum(eight) / len(eight):.1f}")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        "| " + " | ".join(cells) + " |",
    ]
    return "\n".join(lines) + "\n"


def protocol_banner(result: BenchmarkResult) -> str:
    """The line printed above every result: the protocol and its knobs (results.json has all)."""
    p = result.protocol
    return (
        f"protocol {p.name}: short side {p.short_side}, crop {p.crop}, stride {p.stride}, "
        f"{p.head}(scale {p.scale}, bias {p.bias}), CLIP blend {p.clip_blend}"
        f"{'' if result.clip_blend_applied else ' (not applied)'}, "
        f"background {p.background} {p.bg_thresh}, pamr {'on' if p.pamr else 'off'}, "
        f"normalize {p.normalize}, {templates_summary(p.templates)}"
    )


def templates_summary(templates: Sequence[str]) -> str:
    """One template in full; a set as its count and first template, so that an 80-template
    ensemble (`sclip`) keeps the banner one readable line."""
    first = json.dumps(templates[0])
    if len(templates) == 1:
        return f"template {first}"
    known = "OpenAI ImageNet set; " if tuple(templates) == OPENAI_TEMPLATES else ""
    return f"templates: {len(templates)} ({known}first: {first})"


def result_line(result: BenchmarkResult) -> str:
    """The line printed below the banner: the benchmark's headline figures."""
    m = result.metrics
    return (
        f"{result.benchmark}: mIoU {m.miou}  mAcc {m.macc}  aAcc {m.aacc}  "
        f"({result.images} images, {result.images_per_s} img/s)"
    )


def out_of_range_warning(result: BenchmarkResult) -> str:
    """The warning printed when label values outside the class range were left out."""
    return (
        f"warning: {result.benchmark}: label values outside the class range were left out of "
        f"the metric: {result.to_dict()['out_of_range_labels']} (pixels), e.g. in "
        f"{result.out_of_range_files[0]}"
    )


def write_results(path: str | Path, suite: SuiteResult) -> None:
    """results.json: every benchmark's record and the table, written atomically (an interrupted
    run never leaves half a results file)."""
    _write_text(path, json.dumps(suite.to_dict(), indent=1, allow_nan=False, default=str))


def write_markdown(path: str | Path, suite: SuiteResult) -> None:
    """The Markdown table alone, written atomically."""
    _write_text(path, suite.table)


def _write_text(path: str | Path, text: str) -> None:
    with writing(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
