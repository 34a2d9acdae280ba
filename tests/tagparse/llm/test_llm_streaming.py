"""The streaming window of `tagparse run --backend openai` (issue 21), against the FAKE server.

A fake because the faults are chosen ones (see conftest.py): one request held back 60 s, a fixed
latency per answer so a SIGKILL lands mid-window. The run is the real CLI in a subprocess, and
tags.db is read from another connection while it runs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llm_cli import write_captions_csv

CLI = "from tagparse.cli import main; main()"


def start_run(url: str, csv_path: Path, db: Path, *extra: str) -> subprocess.Popen:
    args = ["run", "--backend", "openai", "--base-url", url, "--input", str(csv_path)]
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args, "--db", str(db), "--no-progress", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def count(db: Path, sql: str) -> int:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # no tables yet
        return 0
    finally:
        con.close()


def contents(db: Path) -> tuple[list, list]:
    """Every sample row and every parse, in a stable order (ids and times aside)."""
    con = sqlite3.connect(db)
    try:
        samples = con.execute("SELECT key, caption, caption_hash FROM samples ORDER BY key")
        parses = con.execute(
            "SELECT caption_hash, status, objects, attributes, error FROM parses ORDER BY 1"
        )
        return samples.fetchall(), parses.fetchall()
    finally:
        con.close()


ORPHANS = (
    "SELECT COUNT(*) FROM samples s LEFT JOIN parses p USING (caption_hash) "
    "WHERE p.caption_hash IS NULL"
)


def test_a_slow_caption_does_not_hold_the_others_back(make_fake_server, tmp_path):
    server = make_fake_server()
    n = 1200
    captions = [f"photo {i} of a red car" for i in range(n)]
    captions[2] = "photo of a [slow] green tractor"  # one of the first few: answered 60 s late
    csv_path = write_captions_csv(tmp_path / "captions.csv", captions)
    db = tmp_path / "tags.db"
    proc = start_run(server.url, csv_path, db, "--timeout", "120")  # default flags otherwise
    try:
        assert server.slow_waiting.wait(30), "the slow request never reached the server"
        deadline = time.monotonic() + 45  # well inside the 60 s it is held
        while (committed := count(db, "SELECT COUNT(*) FROM samples")) <= (n - 1) // 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"only {committed} of {n - 1} committed"
            time.sleep(0.1)
        assert server.slow_waiting.is_set(), "the slow reply went out before the check"
        assert count(db, ORPHANS) == 0
    finally:
        server.release()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert count(db, "SELECT COUNT(*) FROM samples") == n
    assert count(db, "SELECT COUNT(*) FROM parses WHERE status = 'ok'") == n
    assert f"{n:,} new samples" in out


@pytest.mark.slow  # three CLI runs
def test_sigkill_mid_window_then_rerun_equals_an_uninterrupted_run(make_fake_server, tmp_path):
    server = make_fake_server(delay_s=0.05)  # 8 in flight: about 2.5 s for 400 distinct captions
    n, distinct = 1200, 400  # every caption three times, under different keys
    captions = [f"a red car number {i % distinct} near a tall tree" for i in range(n)]
    csv_path = write_captions_csv(tmp_path / "captions.csv", captions)
    flags = ("--chunk-size", "20")

    reference = tmp_path / "reference.db"
    done = start_run(server.url, csv_path, reference, *flags)
    assert done.wait(300) == 0, done.communicate()

    db = tmp_path / "tags.db"
    proc = start_run(server.url, csv_path, db, *flags)
    deadline = time.monotonic() + 120
    while count(db, "SELECT COUNT(*) FROM samples") < 100:
        assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "nothing was committed in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    before = count(db, "SELECT COUNT(*) FROM samples")
    assert 100 <= before < n
    assert count(db, ORPHANS) == 0  # a stored sample always has its parse

    rerun = start_run(server.url, csv_path, db, *flags)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"{n - before:,} new samples" in out
    assert count(db, "SELECT COUNT(*) FROM samples") == n
    assert count(db, "SELECT COUNT(DISTINCT key) FROM samples") == n
    assert count(db, "SELECT COUNT(*) FROM parses") == distinct
    assert contents(db) == contents(reference)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
