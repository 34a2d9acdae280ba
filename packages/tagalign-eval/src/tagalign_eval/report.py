"""How results are shown and kept: the lines printed per benchmark and the files (results.json
with every benchmark's record, the Markdown table of `table.py` alone)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tagparse.atomic import atomic_write_text

from tagalign_eval.outputs import writing
from tagalign_eval.protocols import OPENAI_TEMPLATES
from tagalign_eval.result import BenchmarkResult, SuiteResult


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
