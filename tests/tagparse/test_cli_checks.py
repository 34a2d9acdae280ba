"""The shared fault-test helpers (`tests/cli_checks.py`) catch what they promise to catch."""

import sqlite3
import subprocess

import pytest
from cli_checks import assert_user_error, db_snapshot, run_cli


def test_a_real_user_error_passes(tmp_path):
    proc = run_cli(["tagparse", "stats", "--db", tmp_path / "missing.db"])
    line = assert_user_error(proc, "missing.db")
    assert line.startswith("error: ")
    assert db_snapshot(tmp_path / "missing.db") == {}  # and no file was left behind


@pytest.mark.parametrize(
    ("code", "stderr"),
    [
        (1, "error: x\n"),  # wrong exit code
        (2, "Traceback (most recent call last):\nerror: x\n"),
        (2, "error: x\nerror: y\n"),  # two errors
        (2, "some noise\nerror: x\n"),
        (2, "error: about something else\n"),  # does not name the file
    ],
)
def test_broken_promises_fail(code, stderr):
    proc = subprocess.CompletedProcess(["tagparse"], code, "", stderr)
    with pytest.raises(AssertionError):
        assert_user_error(proc, "x")


def test_snapshot_sees_a_changed_row(tmp_path):
    path = tmp_path / "t.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t(v)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    before = db_snapshot(path)
    assert before["rows:t"] == 1 and before["integrity_check"] == "ok"
    con.execute("UPDATE t SET v = 2")
    con.commit()
    con.close()
    after = db_snapshot(path)
    assert after["rows:t"] == 1 and after != before


def test_in_process_runs_the_console_scripts_command(tmp_path):
    """`invoke_cli` finds the command through the installed entry point and keeps its output."""
    from cli_checks import assert_runner_error, invoke_cli

    result = invoke_cli(["tagparse", "stats", "--db", tmp_path / "missing.db"])
    assert assert_runner_error(result, "missing.db") == assert_user_error(
        run_cli(["tagparse", "stats", "--db", tmp_path / "missing.db"]), "missing.db"
    )
