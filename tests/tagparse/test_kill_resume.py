"""SIGKILL a real `tagparse run` process mid-run, re-run it: nothing lost, nothing duplicated."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# The real CLI entry point, with the test backend registered first (a slow one, so the kill lands
# mid-run): `python -c LAUNCH run --backend wordsplit ...`.
LAUNCH = (
    "import functools, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "import wordsplit_backend; from tagparse.backends import register_backend; "
    "register_backend('wordsplit', functools.partial(wordsplit_backend.create, delay=0.05)); "
    "from tagparse.cli import main; main()"
)


def count(db: Path, sql: str) -> int:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        con.close()


def run_cli(db: Path, csv: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            LAUNCH,
            str(HERE),
            "run",
            "--backend",
            "wordsplit",
            "--input",
            str(csv),
            "--db",
            str(db),
            "--batch-size",
            "20",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_loses_and_duplicates_nothing(tmp_path):
    csv = tmp_path / "captions.csv"
    n, distinct = 1200, 400  # every caption appears three times, under different keys
    with open(csv, "w") as f:
        f.write("filename,caption\n")
        f.writelines(
            f"{i:06d}.jpg,a red car number {i % distinct} near a tall tree\n" for i in range(n)
        )
    db = tmp_path / "tags.db"

    proc = run_cli(db, csv)
    deadline = time.time() + 120
    while count(db, "SELECT COUNT(*) FROM samples") < 100:
        assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()}"
        assert time.time() < deadline, "no batch was committed in time"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = count(db, "SELECT COUNT(*) FROM samples")
    assert 100 <= before < n
    # batches are atomic: every stored sample has its parse
    assert (
        count(
            db,
            "SELECT COUNT(*) FROM samples s LEFT JOIN parses p USING (caption_hash) "
            "WHERE p.caption_hash IS NULL",
        )
        == 0
    )

    proc = run_cli(db, csv)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert count(db, "SELECT COUNT(*) FROM samples") == n
    assert count(db, "SELECT COUNT(DISTINCT key) FROM samples") == n
    assert count(db, "SELECT COUNT(*) FROM parses") == distinct
    assert count(db, "SELECT COUNT(*) FROM parses WHERE status != 'ok'") == 0
    assert (
        count(
            db,
            "SELECT COUNT(*) FROM samples s LEFT JOIN parses p USING (caption_hash) "
            "WHERE p.caption_hash IS NULL",
        )
        == 0
    )
    assert f"{n - before:,} new samples" in out
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
