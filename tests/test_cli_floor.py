"""The machinery the three CLIs share from tagparse (issue 20, item 5): one range type with one
message, one one-line usage error, one writability check, one OS-fault line."""

from __future__ import annotations

import errno
import math

import pytest
from click.testing import CliRunner
from tagalign_eval.cli import main as eval_main
from tagalign_eval.limits import RANGES as EVAL_RANGES
from tagalign_toy.demo import main as demo_main
from tagalign_train.cli import main as train_main
from tagalign_train.config import NUMERIC_BOUNDS as TRAIN_RANGES
from tagparse.cli import main as tagparse_main
from tagparse.faults import write_error
from tagparse.numbers import Range
from tagparse.writable import write_refusal


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_range_refuses_non_finite_values_even_unbounded(value):
    assert not Range().admits(value) and not Range(0, low_open=True).admits(value)


@pytest.mark.parametrize(
    "bounds, value, message",
    [
        (Range(1, 64), 0, "--n 0 is out of range: it must be >= 1 and <= 64"),
        (Range(0, low_open=True), 0.0, "--n 0.0 is out of range: it must be > 0"),
        (Range(), math.nan, "--n nan is out of range: it must be finite"),
        (Range(0.0, 1.0), 1.5, "--n 1.5 is out of range: it must be >= 0 and <= 1"),
    ],
)
def test_one_message_for_a_value_out_of_range(bounds, value, message):
    assert bounds.refusal("--n", value) == message
    assert bounds.refusal("--n", None) is None


def test_both_range_tables_are_the_one_range_type():
    """eval's limits.RANGES and the trainer's NUMERIC_BOUNDS hold tagparse's `Range`, so the
    API of each refuses with the same words."""
    assert {type(r) for r in [*EVAL_RANGES.values(), *TRAIN_RANGES.values()]} == {Range}


def test_an_unbounded_float_option_says_finite_in_its_help():
    result = CliRunner().invoke(eval_main, ["custom", "--help"])
    bias = next(line for line in result.output.splitlines() if "--bias" in line)
    assert "[finite]" in bias and "None" not in bias


@pytest.mark.parametrize(
    "main, args, command",
    [
        (tagparse_main, ["vocab", "--db", "x.db", "--objects", "0"], "tagparse vocab"),
        (eval_main, ["voc", "--clip-blend", "2"], "tagalign-eval voc"),
        (train_main, ["--labels", "a", "--data", "b", "--out", "c", "--lr", "0"], "tagalign-train"),
        (demo_main, ["--threads", "0"], "tagalign-demo"),
    ],
    ids=["tagparse", "tagalign-eval", "tagalign-train", "tagalign-demo"],
)
def test_every_cli_words_a_usage_error_the_same_way(main, args, command):
    result = CliRunner().invoke(main, args, prog_name=command.split()[0])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {command}: invalid value for '")
    assert result.stderr.rstrip().endswith(f"; see `{command} --help`")
    assert len(result.stderr.splitlines()) == 1


def test_write_refusal_names_the_file_in_the_way(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert write_refusal(tmp_path / "new" / "deeper") is None
    assert (
        write_refusal(tmp_path / "afile" / "out.json")
        == f"{tmp_path / 'afile'} is a file, not a folder"
    )


def test_write_error_says_what_the_os_said_and_what_to_do(tmp_path):
    fault = OSError(errno.ENOSPC, "No space left on device")
    line = str(write_error(fault, tmp_path / "r.json"))
    assert line == (
        f"{tmp_path / 'r.json'}: cannot write it (No space left on device); "
        "free space on that disk or write to another disk"
    )
