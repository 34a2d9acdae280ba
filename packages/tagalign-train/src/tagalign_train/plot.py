"""`metrics.png`: the losses and the learning rate over the steps of a run, drawn from
`metrics.jsonl` at the end of every run, so a glance tells whether it trained.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global state).
"""

from __future__ import annotations

import json
from pathlib import Path

from tagparse.atomic import atomic_path

PLOT = "metrics.png"
#: The loss terms train.py logs, in the order they are drawn.
LOSS_KEYS = ("loss", "tag", "itc")


def read_metrics(path: Path) -> list[dict]:
    """The entries of metrics.jsonl, one per step (the last one logged wins: a resumed run logs
    again the steps after its checkpoint), in step order. A line a killed run left half-written
    is skipped."""
    by_step: dict[int, dict] = {}
    if not path.is_file():
        return []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            by_step[entry["step"]] = entry
    return [by_step[step] for step in sorted(by_step)]


def plot_metrics(metrics_path: Path, png_path: Path) -> Path | None:
    """Draw `png_path` (atomically) from `metrics_path`; None when nothing was logged yet."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    entries = read_metrics(metrics_path)
    if not entries:
        return None
    steps = [e["step"] for e in entries]
    fig = Figure(figsize=(9, 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, lr_ax = fig.subplots(1, 2)
    for key in LOSS_KEYS:
        if all(key in e for e in entries):
            loss_ax.plot(
                steps, [e[key] for e in entries], label=key, marker="." if len(steps) < 30 else None
            )
    loss_ax.set(title="loss", xlabel="step")
    loss_ax.legend()
    if all("lr" in e for e in entries):
        lr_ax.plot(steps, [e["lr"] for e in entries], color="tab:green")
    lr_ax.set(title="learning rate", xlabel="step")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    return png_path
