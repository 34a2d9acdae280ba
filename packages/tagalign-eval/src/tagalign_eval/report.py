"""Result files: one JSON per run (all benchmarks, protocol, model fingerprint, versions) and a
Markdown table in the paper's column order with averages."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tagalign_eval.datasets import PAPER_EIGHT, PAPER_ORDER, get_benchmark
from tagalign_eval.errors import EvalError


def _title(name: str) -> str:
    try:
        return get_benchmark(name).title or name
    except EvalError:  # a benchmark registered by a plugin that is gone: show its name
        return name


def _miou(result: dict[str, Any]) -> float:
    value = result["metrics"]["mIoU"]
    return float("nan") if value is None else float(value)


def markdown_table(results: list[dict[str, Any]], label: str = "model") -> str:
    """One row of mIoU per run; paper columns first, then any other benchmark, then averages."""
    by_name = {r["benchmark"]: r for r in results}
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


def protocol_banner(result: dict[str, Any]) -> str:
    """The line printed above every result: the protocol and its knobs."""
    p = result["protocol"]
    return (
        f"protocol {p['name']}: short side {p['short_side']}, crop {p['crop']}, stride "
        f"{p['stride']}, {p['head']}(scale {p['scale']}, bias {p['bias']}), CLIP blend "
        f"{p['clip_blend']}{'' if result.get('clip_blend_applied') else ' (not applied)'}, "
        f"background {p['background']} {p['bg_thresh']}, pamr {'on' if p['pamr'] else 'off'}, "
        f"templates {p['templates']}"
    )


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomic write, so an interrupted run never leaves half a results file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, allow_nan=False, default=str))
    os.replace(tmp, path)
