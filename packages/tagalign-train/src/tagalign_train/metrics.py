"""Training metrics: one JSON line per logged step (always) plus TensorBoard when installed.

Only the main rank writes; on the other ranks a MetricsLog accepts and drops everything, so the
loop calls it unconditionally.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self


class MetricsLog:
    """`out/metrics.jsonl` (+ `out/tb/` for TensorBoard); a context manager that closes both."""

    def __init__(self, out: Path, enabled: bool):
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        self.path = out / "metrics.jsonl"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:
            self.tb = None

    def write(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
