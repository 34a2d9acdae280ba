"""Numeric settings: their allowed ranges, the click types and options built from them, and the
Python API's check against the same range.

`click.FloatRange(min=0, min_open=True)` accepts `nan` (every comparison with NaN is false, so
no bound is ever crossed) and `inf`; an unbounded `IntRange` accepts `2**63`, which later ends
in an overflow deep inside a library. This module is the one home of both checks, shared by
the three CLIs (tagparse, tagalign-train, tagalign-eval): each package keeps one table
`setting name -> Range`, its flags are `number_option`s built from it and its Python API calls
`Range.refusal` on the same table, so a CLI and a notebook refuse the same numbers with the same
words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import click

#: The largest count any flag accepts unless it names its own bound: far above any real batch,
#: worker or step count, and small enough for every C integer a library passes it to.
MAX_COUNT = 2**31 - 1


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf; unbounded, its help says `finite`, not
    click's `x<=None`."""

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            bounded = self.min is not None or self.max is not None
            wanted = f"; give one in the range {self._describe_range()}" if bounded else ""
            self.fail(f"{number} is not a finite number{wanted}", param, ctx)
        return number


def count_range(low: int = 0, high: int | None = None) -> click.IntRange:
    """An IntRange from `low` to `high` (default `MAX_COUNT`): every integer flag has a bound."""
    return Range(low, high).click_type(int)


@dataclass(frozen=True)
class Range:
    """`low <= value <= high` (`low < value` when `low_open`), finite; None: no bound there."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def admits(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        """`>= 1 and <= 64`, `> 0`, `<= 1`, or `finite` (no bound but NaN/inf refused)."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_plain(self.low)}")
        if self.high is not None:
            parts.append(f"<= {_plain(self.high)}")
        return " and ".join(parts) or "finite"

    def refusal(self, flag: str, value: float | None) -> str | None:
        """The one-line message refusing `flag value`, or None when it is admitted (or unset)."""
        if value is None or self.admits(value):
            return None
        return f"{flag} {value} is out of range: it must be {self.describe()}"

    def click_type(self, kind: type) -> click.ParamType:
        """An IntRange (`kind` int; its high bound at most `MAX_COUNT`) or a FiniteFloatRange."""
        if kind is int:
            low = None if self.low is None else int(self.low) + int(self.low_open)
            return click.IntRange(low, MAX_COUNT if self.high is None else int(self.high))
        return FiniteFloatRange(self.low, self.high, min_open=self.low_open)


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def flag_name(setting: str) -> str:
    """The flag of a setting: `batch_size` -> `--batch-size`."""
    return "--" + setting.replace("_", "-")


def number_option(
    ranges: Mapping[str, Range], flag: str, kind: type, **extra: Any
) -> Callable[[Callable], Callable]:
    """`--flag` range-checked at parse time from `ranges` (keyed by the setting's name): a bad
    value is click's one-line usage error naming the flag and its range."""
    bounds = ranges[flag.removeprefix("--").replace("-", "_")]
    return click.option(flag, type=bounds.click_type(kind), **extra)
