"""Shared checks for bad-input and fault tests of the three CLIs (tagparse, tagalign-train,
tagalign-eval), so every package's battery asserts the same promise (issue 12):

- the command runs as a real subprocess through the real console script (`run_cli`), or, for
  the cases whose outcome does not depend on the process (validation of flags, files and
  checkpoints; no signal, no rlimit, no mount namespace, no worker process, no import-time
  failure), in-process through the same console script's click command (`invoke_cli`, or
  `in_process` for a `CompletedProcess` like `run_cli`'s: no interpreter start and no torch
  import per case, which was 10-15 s a case on the 2-core box); each battery keeps real
  subprocesses for at least one case per command and per kind of fault;
- a user mistake or a fault ends in exit code 2 and exactly one `error: ...` line on stderr that
  names the file/row/key, never a traceback (`assert_user_error`);
- a tags.db that a failed command touched is unchanged: same rows per table, same content, and
  `PRAGMA integrity_check` still `ok` (`db_snapshot` before and after, compare with `==`).

`tests/` is on `sys.path` through `tests/conftest.py`, so any test does `import cli_checks`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import subprocess
import sys
import traceback
import warnings
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's bin folder: .venv/bin/tagparse etc.


def cli_path(name: str) -> str:
    """The console script `name` of this venv (the tests must run the installed CLI)."""
    path = BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: console script not installed in this venv")
    return str(path)


def run_cli(
    args: Sequence[str | os.PathLike],
    *,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    **kw,
) -> subprocess.CompletedProcess:
    """Run `args` (its first item a console script name, e.g. "tagparse") as a subprocess.

    Output is captured as text; `env` entries are added to (not replacing) the environment;
    other keyword arguments (`cwd`, `input`, ...) go to `subprocess.run`. Never raises on a
    non-zero exit: the caller asserts on `returncode`.
    """
    argv = [cli_path(str(args[0])), *(str(a) for a in args[1:])]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=full_env, check=False, **kw
    )


def invoke_cli(args: Sequence[str | os.PathLike], *, env: dict[str, str] | None = None):
    """Run `args` (its first item a console script name, as for `run_cli`) in this process
    through `click.testing.CliRunner`, calling the function the console script calls (found
    from the installed entry point, so it is the same command). Returns the runner's `Result`;
    check it with `assert_runner_error`. `env` entries are set for the call only. The root
    logger's handlers and level are restored after (a CLI may install its own console handler).
    """
    from click.testing import CliRunner

    name = str(args[0])
    (script,) = entry_points(group="console_scripts", name=name)
    command = script.load()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with warnings.catch_warnings():
            # as in a fresh interpreter: a warning is printed on (the runner's) stderr, where
            # the one-line check sees it, instead of being recorded by pytest; the CLI's own
            # warnings.showwarning, if it sets one, is undone when the block ends
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
                warnings.simplefilter("ignore", category)
            warnings.showwarning = _print_warning
            return CliRunner().invoke(command, [str(a) for a in args[1:]], prog_name=name, env=env)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's own warning output, on the sys.stderr of the moment (the runner's)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def in_process(
    args: Sequence[str | os.PathLike], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`invoke_cli`, answered as `run_cli` answers, so a case asserts the same way whichever
    way it runs: an exception other than `SystemExit` appears as its traceback on stderr (which
    `assert_user_error` refuses), as a real process would print it."""
    result = invoke_cli(args, env=env)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(*result.exc_info)
        )
    return subprocess.CompletedProcess(
        [str(a) for a in args], result.exit_code, result.stdout, stderr
    )


def assert_user_error(proc: subprocess.CompletedProcess, *must_mention: str) -> str:
    """Assert the promise for a user mistake or fault, and return the error line.

    Exit code 2, no "Traceback" anywhere, stderr's lines are `warning: ...` lines and exactly one
    `error: ...` line (the last), which contains every string in `must_mention` (the file, row or
    key it is about, and what to do).
    """
    where = f"\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr + proc.stdout, "a traceback" + where
    assert proc.returncode == 2, "exit code is not 2" + where
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr" + where
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]], "not exactly one `error:` line, last" + where
    others = [line for line in lines[:-1] if not line.startswith("warning: ")]
    assert not others, "stderr has lines other than warnings and the error" + where
    for fragment in must_mention:
        assert fragment in errors[0], f"the error does not mention {fragment!r}" + where
    return errors[0]


def db_snapshot(path: str | os.PathLike) -> dict[str, object]:
    """Row count of every table, a digest of all rows, and `PRAGMA integrity_check`.

    Opened read-only (`mode=ro`; `immutable=1` when the folder cannot hold a `-shm` file), so
    taking a snapshot changes nothing. A missing file gives `{}`, so "no file was left behind"
    is `db_snapshot(p) == {}`.
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        snapshot: dict[str, object] = {
            f"rows:{t}": con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables
        }
        digest = hashlib.sha1()
        for line in con.iterdump():
            digest.update(line.encode())
        snapshot["digest"] = digest.hexdigest()
        snapshot["integrity_check"] = con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()
    return snapshot


def assert_runner_error(result, *must_mention: str) -> str:
    """`assert_user_error` for a command run in-process by `click.testing.CliRunner` (cheap: no
    interpreter start), so a battery can hold many pure-validation cases; the same promise,
    and no exception other than the SystemExit of `sys.exit(2)`."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    proc = subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr)
    return assert_user_error(proc, *must_mention)
