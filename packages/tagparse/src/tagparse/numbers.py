"""Click types for numeric flags that refuse what a range check alone lets through.

`click.FloatRange(min=0, min_open=True)` accepts `nan` (every comparison with NaN is false, so
no bound is ever crossed) and `inf`; an unbounded `IntRange` accepts `2**63`, which later ends
in an overflow deep inside a library. These types are the one home of both checks, shared by
the three CLIs (tagparse, tagalign-train, tagalign-eval), so each refuses the same inputs with
click's one-line usage error naming the flag.
"""

from __future__ import annotations

import math

import click

#: The largest count any flag accepts unless it names its own bound: far above any real batch,
#: worker or step count, and small enough for every C integer a library passes it to.
MAX_COUNT = 2**31 - 1


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            bounded = self.min is not None or self.max is not None
            wanted = f"; give one in the range {self._describe_range()}" if bounded else ""
            self.fail(f"{number} is not a finite number{wanted}", param, ctx)
        return number


def count_range(low: int = 0, high: int | None = None) -> click.IntRange:
    """An IntRange from `low` to `high` (default `MAX_COUNT`): every integer flag has a bound."""
    return click.IntRange(low, MAX_COUNT if high is None else high)
