"""The mIoU table as the paper prints it: one row per model, the paper's benchmarks in its column
order, then any other benchmark, then the averages (over all, and over the paper's eight)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tagalign_eval.datasets import PAPER_EIGHT, PAPER_ORDER, get_benchmark
from tagalign_eval.errors import EvalError

if TYPE_CHECKING:
    from tagalign_eval.result import BenchmarkResult


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
