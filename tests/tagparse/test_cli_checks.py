"""The shared fault-test helpers (`tests/cli_checks.py`) catch what they promise to catch."""

import importlib
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


def test_in_process_shows_an_uncaught_exception_as_a_traceback(tmp_path, monkeypatch):
    """`in_process` answers like a real process: an uncaught exception is a traceback on
    stderr, which the one-line check refuses; a user error is the same line as the real CLI's."""
    from cli_checks import in_process

    stats_module = importlib.import_module("tagparse.cli.stats")  # the attribute is the command
    args = ["tagparse", "stats", "--db", tmp_path / "missing.db"]
    assert assert_user_error(in_process(args), "missing.db") == assert_user_error(
        run_cli(args), "missing.db"
    )

    def boom(*_args, **_kwargs):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(stats_module, "collect_stats", boom)
    proc = in_process(["tagparse", "stats", "--db", _empty_tags_db(tmp_path)])
    assert "Traceback" in proc.stderr and "RuntimeError: a bug" in proc.stderr
    with pytest.raises(AssertionError, match="a traceback"):
        assert_user_error(proc, "t.db")


def test_in_process_prints_warnings_as_a_fresh_interpreter_does(tmp_path, monkeypatch):
    """A stray Python warning reaches the captured stderr (not pytest's recorder), so a case
    run in-process still fails on a multi-line warning the real process would print."""
    import warnings

    from cli_checks import in_process

    stats_module = importlib.import_module("tagparse.cli.stats")
    real = stats_module.collect_stats

    def noisy(*args, **kwargs):
        warnings.warn("something odd", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(stats_module, "collect_stats", noisy)
    proc = in_process(["tagparse", "stats", "--db", _empty_tags_db(tmp_path)])
    assert proc.returncode == 0 and "UserWarning: something odd" in proc.stderr
    assert "warnings.warn(" in proc.stderr  # the source line: a second, non-`warning:` line


def _empty_tags_db(folder):
    from tagparse.db import TagsDB

    TagsDB.open(folder / "t.db", create=True).close()
    return folder / "t.db"
