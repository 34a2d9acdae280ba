"""`tagparse run --distributor ray` on a REAL local Ray cluster (2 CPUs, one per module) with the
REAL spaCy backend: the tags.db a local run writes, row for row; a re-run sends nothing; a
SIGKILLed worker is replaced without a lost or duplicated row; and the bad-input lines.

The captions are long (FACTUAL captions joined to ~4,000 characters), so that spaCy takes
seconds over them and a worker killed after the first commit dies mid-run, never after it.
"""

from __future__ import annotations

import builtins
import csv
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tagparse.cli import main
from tagparse.pipeline import run_parse
from tagparse.ray.cluster import RayCluster

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "factual_sample.csv"
ACTOR_TITLE = b"ray::MapWorker(MapBatches(BackendActor))"
N_LONG = 40


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the module (`ray.init` costs 10-20 s here); every run of the
    module reuses it (RayCluster leaves a session it did not start running)."""
    cluster = RayCluster(None, num_cpus=2)
    yield cluster
    cluster.close()


def captions() -> list[str]:
    with SAMPLE.open(newline="") as f:
        return [row["caption"] for row in csv.DictReader(f)]


def write_csv(path: Path, texts: list[str]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "caption"])
        writer.writerows((f"img{i:03d}.jpg", c) for i, c in enumerate(texts))
    return path


def long_captions(n: int) -> list[str]:
    """`n` distinct ~4,000-character captions (FACTUAL sentences, rotated)."""
    base = captions()
    return [f"{i}: " + ". ".join(base[(i + j) % len(base)] for j in range(120)) for i in range(n)]


def parse_rows(db: Path) -> list[tuple]:
    """Every sample with its parse, order aside (the parser id and timestamps left out)."""
    with sqlite3.connect(db) as con:
        return sorted(
            con.execute(
                "SELECT s.key, s.caption, p.objects, p.attributes, p.raw_output, p.status, "
                "p.error FROM samples s JOIN parses p ON p.caption_hash = s.caption_hash"
            )
        )


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def run_cli(*args: str):
    return CliRunner().invoke(main, ["run", "--backend", "spacy", "--no-progress", *args])


def backend_actor_pids() -> list[int]:
    """PIDs of this session's BackendActor processes (Ray titles them `ray::<class>`), found
    among this process's descendants (the local cluster's raylet is our child)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(ACTOR_TITLE):
                found.append(pid)
        except OSError:
            continue
    return found


class Killer(threading.Thread):
    """SIGKILLs the BackendActor process once the tags.db holds a committed sample (`times`
    kills, each of a fresh actor process), recording how many samples were stored then."""

    def __init__(self, db: Path, times: int):
        super().__init__(daemon=True)
        self.db, self.times = db, times
        self.killed: list[tuple[int, int]] = []  # (pid, samples stored at the kill)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and len(self.killed) < self.times:
            time.sleep(0.05)
            try:
                stored = count(self.db, "samples")
            except sqlite3.OperationalError:  # not created yet
                continue
            if stored == 0:
                continue
            for pid in backend_actor_pids():
                if pid not in {p for p, _ in self.killed}:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append((pid, stored))
                    break


def test_ray_run_equals_a_local_run_and_a_rerun_sends_nothing(ray_cluster, tmp_path):
    inputs = [str(write_csv(tmp_path / "captions.csv", captions()))]
    local, distributed = tmp_path / "local.db", tmp_path / "ray.db"
    run_parse(local, inputs, "spacy", {}, batch_size=8, progress=False)

    summary = run_parse(
        distributed, inputs, "spacy", {}, batch_size=8, distributor="ray", progress=False
    )
    assert summary.ok and summary.parsed == len(set(captions()))
    assert parse_rows(distributed) == parse_rows(local)
    assert len(parse_rows(local)) == len(captions())

    again = run_parse(
        distributed, inputs, "spacy", {}, batch_size=8, distributor="ray", progress=False
    )
    assert (again.parsed, again.failed, again.new_samples) == (0, 0, 0)
    assert again.cached == summary.parsed
    assert parse_rows(distributed) == parse_rows(local)


def test_a_sigkilled_worker_is_replaced_nothing_lost_or_duplicated(ray_cluster, tmp_path):
    texts = long_captions(N_LONG)
    db = tmp_path / "tags.db"
    killer = Killer(db, times=1)
    killer.start()
    try:
        summary = run_parse(
            db,
            [str(write_csv(tmp_path / "long.csv", texts))],
            "spacy",
            {},
            batch_size=2,
            distributor="ray",
            progress=False,
        )
    finally:
        killer.stop.set()
        killer.join()
    assert len(killer.killed) == 1
    ((_, stored_at_kill),) = killer.killed
    assert 0 < stored_at_kill < N_LONG  # killed mid-run
    assert summary.ok and summary.parsed == N_LONG
    assert count(db, "samples") == N_LONG and count(db, "parses") == N_LONG
    assert sorted(c for _, c, *_ in parse_rows(db)) == sorted(texts)


def test_a_worker_dying_past_the_retry_budget_is_one_line_and_keeps_the_db(ray_cluster, tmp_path):
    texts = long_captions(N_LONG)
    db = tmp_path / "tags.db"
    killer = Killer(db, times=20)
    killer.start()
    try:
        result = run_cli(
            "--input",
            str(write_csv(tmp_path / "long.csv", texts)),
            "--db",
            str(db),
            "--chunk-size",
            "2",
            "--distributor",
            "ray",
        )
    finally:
        killer.stop.set()
        killer.join()
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "re-run the same command to resume" in errors[0], lines
    # Ray's driver prints its own notices of the restarts (`(raylet) ...`), which it offers
    # no switch for; nothing else may be printed
    assert all("(raylet)" in line for line in lines if line not in errors), lines
    kept = parse_rows(db)
    assert 0 < len(kept) < N_LONG  # the chunks committed before the end are there
    assert len({key for key, *_ in kept}) == len(kept)


def test_ray_not_installed_is_one_line(tmp_path, monkeypatch):
    """FAKE: `import ray` made to fail (an import hook), as where tagparse[ray] is missing."""
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    db = tmp_path / "tags.db"
    result = run_cli("--input", str(SAMPLE), "--db", str(db), "--distributor", "ray")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --distributor ray needs Ray Data (ray is not installed); "
        "pip install 'tagparse[ray]'"
    )
    assert not db.exists()


def test_an_unreachable_ray_address_fails_fast_and_keeps_the_db(tmp_path):
    inputs = str(write_csv(tmp_path / "captions.csv", captions()[:5]))
    db = tmp_path / "tags.db"
    assert run_cli("--input", inputs, "--db", str(db)).exit_code == 0
    before = parse_rows(db)
    started = time.monotonic()
    result = run_cli(
        "--input",
        inputs,
        "--db",
        str(db),
        "--distributor",
        "ray",
        "--ray-address",
        "127.0.0.1:1",
    )
    assert time.monotonic() - started < 15
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: --ray-address 127.0.0.1:1: no Ray cluster answers there")
    assert parse_rows(db) == before


def test_ray_address_without_the_ray_distributor_is_refused(tmp_path):
    result = run_cli(
        "--input", str(SAMPLE), "--db", str(tmp_path / "t.db"), "--ray-address", "auto"
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --ray-address needs --distributor ray; add it or drop the address"
    )
