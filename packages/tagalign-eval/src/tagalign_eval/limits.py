"""The allowed range of every numeric setting of the evaluator, in one table.

The click options are range-checked from it at parse time (`click_range`), and the Python API
(`run_suite`, `resolve_protocol`) checks the same values with it (`check_range`), so the CLI and
a notebook refuse the same numbers. Torch-free: the CLI builds its options from it at import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import click
from tagparse.numbers import MAX_COUNT, FiniteFloatRange

from tagalign_eval.errors import EvalError


@dataclass(frozen=True)
class Range:
    """`low <= value <= high` (`low < value` when `low_open`); None means unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.high is not None:
            return f"in [{self.low}, {self.high}]"
        return f"greater than {self.low}" if self.low_open else f"at least {self.low}"


RANGES: dict[str, Range] = {
    # how a run is executed
    # every count has an upper bound (2**63 is a typo that overflows in torch)
    "batch_size": Range(1, 2**20),
    "crop_batch": Range(1, 2**20),
    "workers": Range(0, 1024),
    "limit": Range(1, MAX_COUNT),
    # protocol settings (`Protocol` fields)
    "short_side": Range(1, 2**16),
    "max_long_side": Range(1, 2**16),
    "crop": Range(1, 2**16),
    "stride": Range(1, 2**16),
    "scale": Range(0, low_open=True),
    "bias": Range(),
    "clip_blend": Range(0.0, 1.0),
    "bg_thresh": Range(0.0, 1.0),
    # a custom benchmark's mask value that is not a class
    "ignore_index": Range(0, MAX_COUNT),
}
"""Setting name (its flag is `--` + the name with `-` for `_`) -> allowed values."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def click_range(name: str, kind: type) -> click.ParamType:
    """The click type of `--name`: an IntRange or FloatRange from `RANGES`."""
    bounds = RANGES[name]
    if kind is int:
        low = None if bounds.low is None else int(bounds.low) + int(bounds.low_open)
        high = None if bounds.high is None else int(bounds.high)
        return click.IntRange(low, high)
    return FiniteFloatRange(bounds.low, bounds.high, min_open=bounds.low_open)


def check_range(name: str, value: float | None) -> None:
    """Raise the one-line `EvalError` when `value` (None: unset) is outside `RANGES[name]`."""
    if value is None:
        return
    bounds = RANGES[name]
    if not bounds.contains(value):
        raise EvalError(f"{flag(name)} must be {bounds.describe()}, not {value}")
