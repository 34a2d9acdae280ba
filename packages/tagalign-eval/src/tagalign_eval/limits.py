"""The allowed range of every numeric setting of the evaluator, in one table (gathered from the
fields of `SuiteRequest` and `Protocol`, where each is declared).

The click options are range-checked from it at parse time (`number_option`), and the Python API
(`run_suite`, `resolve_protocol`) checks the same values with it (`check_range`), so the CLI and
a notebook refuse the same numbers. The `Range` type and its messages are tagparse's, shared by
the three CLIs. Torch-free: the CLI builds its options from it at import.
"""

from __future__ import annotations

from tagparse.fieldoptions import ranges_of
from tagparse.numbers import MAX_COUNT, Range, flag_name

from tagalign_eval.errors import EvalError
from tagalign_eval.protocol import Protocol
from tagalign_eval.request import SuiteRequest

RANGES: dict[str, Range] = {
    **ranges_of(SuiteRequest),  # how a run is executed
    **ranges_of(Protocol),  # protocol settings
    "ignore_index": Range(0, MAX_COUNT),  # a custom benchmark's mask value that is not a class
}
"""Setting name (its flag is `--` + the name with `-` for `_`) -> allowed values; the ranges are
declared on the `SuiteRequest` and `Protocol` fields."""


def check_range(name: str, value: float | None) -> None:
    """Raise the one-line `EvalError` when `value` (None: unset) is outside `RANGES[name]`."""
    refusal = RANGES[name].refusal(flag_name(name), value)
    if refusal is not None:
        raise EvalError(refusal)
