"""Issue 24 part 3: the bench scripts' flags. A typo, a count of 0 or 2**63, a NaN: one
`error:` line and exit code 2 (argparse alone prints a usage block first and takes any integer).

`benchargs` is tested in-process; a scan keeps every bench script on it; one script runs for
real to prove the entry point prints the one line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import benchargs  # bench/ is not a package: found through sys.path

HUGE = str(2**63)


def _parser():
    parser = benchargs.OneLineParser(prog="bench_x.py")
    parser.add_argument("--images", type=benchargs.count(), default=8)
    parser.add_argument("--workers", type=benchargs.count(0), default=2)
    parser.add_argument("--peak", type=benchargs.finite(0, low_open=True), default=1.0)
    return parser


@pytest.mark.parametrize(
    "args, mentions",
    [
        (["--images", "0"], ["--images", "0 is not in the range 1.."]),
        (["--images", HUGE], ["--images", f"{HUGE} is not in the range"]),
        (["--images", "1.5"], ["--images", "'1.5' is not an integer"]),
        (["--workers", "-1"], ["--workers", "-1 is not in the range 0.."]),
        (["--peak", "nan"], ["--peak", "nan is not a number > 0"]),
        (["--peak", "inf"], ["--peak", "inf"]),
        (["--peak", "0"], ["--peak", "0 is not a number > 0"]),
        (["--peak", "x"], ["--peak", "'x' is not a number"]),
        (["--imgaes", "3"], ["unrecognized arguments: --imgaes"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v[0].startswith("-") else None,
)
def test_bad_flag_is_one_error_line(capsys, args, mentions):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_args(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: bench_x.py: "), err
    assert "usage:" not in err and "see `bench_x.py --help`" in err
    for fragment in mentions:
        assert fragment in err, err


def test_good_flags_parse():
    args = _parser().parse_args(["--images", "3", "--workers", "0", "--peak", "989"])
    assert (args.images, args.workers, args.peak) == (3, 0, 989.0)


def test_every_bench_script_parses_through_benchargs():
    """No bench script builds a plain ArgumentParser or takes a bare `type=int`/`type=float`."""
    found = []
    for path in sorted(p for p in BENCH.glob("*.py") if p.name != "benchargs.py"):
        text = path.read_text()
        if re.search(r"argparse\.ArgumentParser\(|type=(int|float)\b", text):
            found.append(path.name)
    assert found == [], found


def test_a_real_bench_script_prints_one_line():
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_stream.py"), "--captions", HUGE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [
        (
            f"error: bench_stream.py: argument --captions: {HUGE} is not in the range "
            "1..2147483647; see `bench_stream.py --help`"
        )
    ]
