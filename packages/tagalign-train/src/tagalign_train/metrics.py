"""Training metrics: one JSON line per logged step (always), the same entries to the trackers
`--report-to` chose (tracking.py), and `metrics.png` drawn from them when the run ends.

Only the main rank writes; on the other ranks a MetricsLog accepts and drops everything, so the
loop calls it unconditionally.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from tagalign_train.plot import PLOT, plot_metrics
from tagalign_train.tracking import Tracker


class MetricsLog:
    """`out/metrics.jsonl` + the trackers; a context manager that closes the trackers and draws
    `out/metrics.png` however the run ends (finished, or stopped by an error)."""

    def __init__(self, out: Path, enabled: bool, trackers: Sequence[Tracker] = ()):
        self.enabled = enabled
        self.out = out
        self.path = out / "metrics.jsonl"
        self.trackers = list(trackers) if enabled else []

    def write(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        for tracker in self.trackers:
            tracker.log(step, values)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()
        if self.enabled:
            plot_metrics(self.path, self.out / PLOT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
