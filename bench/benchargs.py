"""Argument parsing for the bench scripts: a bad flag is one `error:` line and exit code 2, as in
the toolkit's CLIs, and every number is range-checked (a count of 0, -1 or 2**63, a NaN or inf).

argparse alone prints a usage block before its error, and `type=int` takes any integer.
The bounds are `tagparse.numbers.MAX_COUNT`, the toolkit's own.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

from tagparse.numbers import MAX_COUNT


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one `error:` line naming the script."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def count(low: int = 1, high: int = MAX_COUNT) -> Callable[[str], int]:
    """`type=` of an integer flag in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in the range {low}..{high}")
        return value

    return parse


def finite(low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """`type=` of a float flag: finite, above `low` (strictly when `low_open`), at most `high`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        below = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or below or (high is not None and value > high):
            bounds = f"{'>' if low_open else '>='} {low}" if low is not None else "finite"
            upper = f" and <= {high}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"{text} is not a number {bounds}{upper}")
        return value

    return parse
