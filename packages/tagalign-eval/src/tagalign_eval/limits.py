"""The allowed range of every numeric setting of the evaluator, in one table.

The click options are range-checked from it at parse time (`number_option`), and the Python API
(`run_suite`, `resolve_protocol`) checks the same values with it (`check_range`), so the CLI and
a notebook refuse the same numbers. The `Range` type and its messages are tagparse's, shared by
the three CLIs. Torch-free: the CLI builds its options from it at import.
"""

from __future__ import annotations

from tagparse.numbers import MAX_COUNT, Range, flag_name

from tagalign_eval.errors import EvalError

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


def check_range(name: str, value: float | None) -> None:
    """Raise the one-line `EvalError` when `value` (None: unset) is outside `RANGES[name]`."""
    refusal = RANGES[name].refusal(flag_name(name), value)
    if refusal is not None:
        raise EvalError(refusal)
