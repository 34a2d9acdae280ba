"""Issue 12, tagparse: faults of the file system and of SQLite, made for real — read-only media
(a read-only bind mount, or a chmod-ed folder), a full disk (a tiny tmpfs, or SQLite's own page
limit), a second writer, a SIGKILL — end in one `error:` line or in a correct result, and never
lose committed rows."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_checks import assert_user_error, cli_path, db_snapshot, run_cli
from click.testing import CliRunner
from tagparse.cli import main
from tagparse.db import Reader, TagsDB
from tagparse.db.connection import connect
from tagparse.reader import load_labels
from tagsdb_factory import make_tagsdb, start_wordsplit_writers, wordsplit_cli, write_captions
from wordsplit_backend import wordsplit  # noqa: F401 (fixture)

TAGPARSE = cli_path("tagparse")


def count_samples(path: Path) -> int:
    con = sqlite3.connect(path, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM samples").fetchone()[0]
    except sqlite3.OperationalError:  # the writer has not created the tables yet
        return 0
    finally:
        con.close()


def files_in(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


# -- 5: read-only media --------------------------------------------------------------------------

_UNSHARE = shutil.which("unshare")


def _can_bind_read_only() -> bool:
    if _UNSHARE is None:
        return False
    probe = subprocess.run(
        [_UNSHARE, "--mount", "--map-root-user", "true"], capture_output=True, check=False
    )
    plain = subprocess.run([_UNSHARE, "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0 or plain.returncode == 0


def run_on_read_only_mount(folder: Path, script: str) -> subprocess.CompletedProcess:
    """Run the shell `script` in a private mount namespace where `folder` is a read-only bind
    mount: real read-only media (EROFS), which even root cannot write."""
    if not _can_bind_read_only():
        pytest.skip("no mount namespace here (unshare --mount is not permitted)")
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    f = shlex.quote(str(folder))
    setup = f"mount --bind {f} {f} && mount -o remount,bind,ro {f} && "
    return subprocess.run(
        [_UNSHARE, "--mount", *user, "sh", "-c", setup + script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def read_commands(db: Path, out: Path) -> str:
    """Every read-only use of a tags.db, as one shell script; each prints its exit code."""
    db_q, out_q, t = shlex.quote(str(db)), shlex.quote(str(out)), shlex.quote(TAGPARSE)
    load = (
        f"{shlex.quote(sys.executable)} -c 'import sys; from tagparse.reader import load_labels; "
        f"print(len(load_labels(sys.argv[1])))' {db_q}"
    )
    return "; ".join(
        [
            f"{t} stats --db {db_q}; echo rc=$?",
            f"{t} export --db {db_q} --format jsonl -o {out_q}/x.jsonl; echo rc=$?",
            f"{t} export --db {db_q} --format tagalign -o {out_q}/tagalign; echo rc=$?",
            f"{t} review --db {db_q} --report; echo rc=$?",
            f"{t} merge {db_q} -o {out_q}/merged.db; echo rc=$?",
            f"{load}; echo rc=$?",
        ]
    )


@pytest.fixture
def ro_setup(tmp_path):
    """(media folder holding only tags.db, the db, a writable output folder, db's snapshot)."""
    folder = tmp_path / "media"
    db = make_tagsdb(folder / "tags.db")
    before = db_snapshot(db)
    for leftover in folder.glob("tags.db-*"):  # a finished writer left a complete file
        assert leftover.stat().st_size == 0 or leftover.name.endswith("-shm")
        leftover.unlink()
    (folder / "tags.csv").unlink()
    out = tmp_path / "out"
    out.mkdir()
    return folder, db, out, before


def unchanged(folder: Path, db: Path, listing: dict, before: dict) -> bool:
    """Nothing in `folder` was written, and the db's rows are as `before`."""
    return files_in(folder) == listing and db_snapshot(db) == before


def test_read_only_media_can_be_read(ro_setup):
    folder, db, out, before = ro_setup
    listing = files_in(folder)
    proc = run_on_read_only_mount(folder, read_commands(db, out))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.count("rc=0") == 6, proc.stdout + proc.stderr
    assert "20 samples" in proc.stdout and "\n20\nrc=0" in proc.stdout
    assert count_samples(out / "merged.db") == 20
    assert unchanged(folder, db, listing, before)


@pytest.mark.parametrize(
    "command",
    [
        "vocab --db {db}",
        "run --backend nltk --input {csv} --db {folder}/new.db",
        "merge {other} -o {folder}/merged.db",
        "import-tagalign --db {db} --tags {tags} --labels {labels}",
    ],
    ids=lambda c: c.split()[0],
)
def test_writing_to_read_only_media_is_one_line(ro_setup, tmp_path, command):
    folder, db, out, before = ro_setup
    csv = write_captions(out / "c.csv", 3)
    other = make_tagsdb(out / "other.db", n=3)
    (out / "tags.csv").write_text("tag\ncat\n")
    (out / "labels.json").write_text('{"a.jpg": [0]}')
    names = {
        "db": db,
        "csv": csv,
        "folder": folder,
        "other": other,
        "tags": out / "tags.csv",
        "labels": out / "labels.json",
    }
    argv = [TAGPARSE, *shlex.split(command.format(**names))]
    listing = files_in(folder)
    proc = run_on_read_only_mount(folder, shlex.join(argv))
    line = assert_user_error(proc, str(folder), "writable")
    assert "read-only" in line
    assert unchanged(folder, db, listing, before)


def test_read_only_folder_by_permissions(ro_setup):
    """Without root: the same promise for a folder that is only chmod-ed read-only."""
    folder, db, out, before = ro_setup
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (the mount test covers it)")
        listing = files_in(folder)
        proc = subprocess.run(
            ["sh", "-c", read_commands(db, out)], capture_output=True, text=True, check=False
        )
        assert proc.stdout.count("rc=0") == 6, proc.stdout + proc.stderr
        assert_user_error(run_cli(["tagparse", "vocab", "--db", db]), str(db), "writable")
        assert files_in(folder) == listing
    finally:
        folder.chmod(0o755)
    assert db_snapshot(db) == before


def test_read_only_uri_reads_without_writing_anything(ro_setup):
    """Always runs: the read path through an immutable read-only URI — what read-only media get
    — reads every table the CLI and the trainer read, and creates no file beside the db."""
    folder, db, _, _ = ro_setup
    listing = files_in(folder)
    con = connect(f"file:{db}?mode=ro&immutable=1", read_only=True, uri=True)
    with Reader(con) as r:
        assert r.count_samples() == 20
        assert len(r.keyed_label_rows().fetchall()) == 20 and len(r.vocab_rows()) > 0
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
            con.execute("DELETE FROM samples")
    ro = TagsDB.open(db, read_only=True)
    assert ro.count_samples() == 20 and ro.get_meta("format_name") == "tagalign-tags"
    ro.close()
    assert len(load_labels(db)) == 20
    assert files_in(folder).keys() - listing.keys() <= {"tags.db-wal", "tags.db-shm"}


def test_unfinished_wal_on_read_only_media_is_refused(ro_setup, tmp_path):
    """Committed rows still in tags.db-wal cannot be seen on read-only media: say so, do not
    show a file without them."""
    folder, db, _, _ = ro_setup
    live = tmp_path / "live.db"
    shutil.copy(db, live)
    con = sqlite3.connect(live)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("INSERT INTO samples(key, caption, caption_hash) VALUES ('new', 'x', 'h')")
    con.commit()
    shutil.copy(live, folder / "tags.db")
    shutil.copy(f"{live}-wal", folder / "tags.db-wal")  # a copy taken while a writer ran
    con.close()
    proc = run_on_read_only_mount(folder, f"{shlex.quote(TAGPARSE)} stats --db {db}")
    assert_user_error(proc, "tags.db-wal", "read-only", "copy the folder")


# -- 4: two writers -----------------------------------------------------------------------------


def test_two_concurrent_runs_on_one_tags_db_both_complete(tmp_path):
    db = tmp_path / "tags.db"
    inputs = [write_captions(tmp_path / f"c{i}.csv", 150, start=1000 * i) for i in range(2)]
    procs = start_wordsplit_writers(db, inputs, "--batch-size", "5", delay=0.01)
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
    assert count_samples(db) == 300
    assert db_snapshot(db)["integrity_check"] == "ok"
    assert db_snapshot(db)["rows:parsers"] == 1


# -- 6: a finished writer leaves a complete file; a killed one is recovered by the next -----------


def test_finished_run_needs_no_wal_to_copy(tmp_path):
    db = tmp_path / "tags.db"
    csv = write_captions(tmp_path / "c.csv", 200)
    done = subprocess.run(
        wordsplit_cli("run", "--backend", "wordsplit", "--input", csv, "--db", db, "--no-progress"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy" / "tags.db"
    copy.parent.mkdir()
    shutil.copy(db, copy)  # the file alone, as a user copies it
    assert count_samples(copy) == 200


@pytest.mark.slow
def test_after_sigkill_the_next_writer_folds_the_wal_back(tmp_path):
    db = tmp_path / "tags.db"
    csv = write_captions(tmp_path / "c.csv", 3000)
    proc = subprocess.Popen(
        wordsplit_cli(
            "run", "--backend", "wordsplit", "--input", csv, "--db", db,
            "--batch-size", "20", "--no-progress",
            delay=0.02,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    while not db.exists() or count_samples(db) < 200:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    committed = count_samples(db)
    backup = tmp_path / "backup.db"  # the copy the spec recommends for a file in use
    with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    assert count_samples(backup) == committed
    vocab = run_cli(["tagparse", "vocab", "--db", db])  # any writer that finishes
    assert vocab.returncode == 0, vocab.stderr
    alone = tmp_path / "alone" / "tags.db"
    alone.parent.mkdir()
    shutil.copy(db, alone)
    assert count_samples(alone) == committed


# -- 7: a full disk -------------------------------------------------------------------------------


def test_disk_full_on_a_real_tiny_file_system(tmp_path):
    """Two tiny tmpfs disks: on one (320 KiB) `tagparse run` fills the disk mid-run; on the
    other, filled up beforehand, `tagparse vocab` finds no space for its transaction."""
    if not _can_bind_read_only():
        pytest.skip("no mount namespace here (the page-limit test covers disk full)")
    disk, disk2, saved = tmp_path / "disk", tmp_path / "disk2", tmp_path / "saved"
    for folder in (disk, disk2, saved):
        folder.mkdir()
    seed = make_tagsdb(tmp_path / "seed" / "tags.db", n=20)
    unlabelled = make_tagsdb(tmp_path / "seed2" / "tags.db", n=20)
    more = write_captions(tmp_path / "more.csv", 1500, start=100)
    add = wordsplit_cli("run", "--backend", "wordsplit", "--input", more, "--db", unlabelled)
    assert subprocess.run(add, capture_output=True, check=False).returncode == 0
    before_vocab = db_snapshot(unlabelled)
    csv = write_captions(tmp_path / "c.csv", 4000)
    run = wordsplit_cli(
        "run", "--backend", "wordsplit", "--input", csv, "--db", disk / "tags.db",
        "--batch-size", "50", "--no-progress",
    )  # fmt: skip
    q = shlex.quote
    d, d2, s = q(str(disk)), q(str(disk2)), q(str(saved))
    script = " ; ".join(
        [
            f"mount -t tmpfs -o size=320k tmpfs {d} && mount -t tmpfs -o size=2m tmpfs {d2}",
            f"cp {q(str(seed))} {d}/",
            f"{shlex.join(run)} > {s}/run.out 2> {s}/run.err",
            f"echo $? > {s}/run.rc",
            f"mkdir {s}/after_run && cp {d}/tags.db* {s}/after_run/",
            f"cp {q(str(unlabelled))} {d2}/",
            f"dd if=/dev/zero of={d2}/filler bs=4096 2> /dev/null",  # the rest of the disk
            f"{q(TAGPARSE)} vocab --db {d2}/tags.db > /dev/null 2> {s}/vocab.err",
            f"echo $? > {s}/vocab.rc",
            f"mkdir {s}/after_vocab && cp {d2}/tags.db* {s}/after_vocab/",
        ]
    )
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    proc = subprocess.run(
        [_UNSHARE, "--mount", *user, "sh", "-c", script],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert (saved / "vocab.rc").exists(), proc.stderr

    def result(name: str) -> subprocess.CompletedProcess:
        code = int((saved / f"{name}.rc").read_text())
        return subprocess.CompletedProcess([name], code, "", (saved / f"{name}.err").read_text())

    assert_user_error(result("run"), str(disk / "tags.db"), "disk full")
    after_run = db_snapshot(saved / "after_run" / "tags.db")
    assert after_run["integrity_check"] == "ok"
    assert 20 < after_run["rows:samples"] < 4020  # the batches committed before are kept
    assert_user_error(result("vocab"), str(disk2 / "tags.db"), "disk full")
    assert db_snapshot(saved / "after_vocab" / "tags.db") == before_vocab


@pytest.fixture
def page_limit(monkeypatch):
    """Cap every tagparse writer connection at N pages (`PRAGMA max_page_count`): SQLite then
    fails with a real SQLITE_FULL on a real file, wherever the test runs."""
    from tagparse.db import connection

    def cap(pages: int) -> None:
        monkeypatch.setattr(
            connection, "WRITER_PRAGMAS", (*connection.WRITER_PRAGMAS, f"max_page_count={pages}")
        )

    return cap


@pytest.mark.usefixtures("wordsplit")
def test_disk_full_by_sqlites_page_limit(tmp_path, page_limit):
    db = make_tagsdb(tmp_path / "tags.db", n=20)
    runner = CliRunner()

    def run(csv: Path):
        args = ["run", "--backend", "wordsplit", "--input", str(csv), "--db", str(db)]
        return runner.invoke(main, [*args, "--no-progress", "--batch-size", "50"])

    assert run(write_captions(tmp_path / "more.csv", 2000, start=100)).exit_code == 0
    con = sqlite3.connect(db)
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()

    page_limit(pages + 4)  # a few pages left: the run fills them mid-way
    failed = run(write_captions(tmp_path / "c.csv", 3000, start=10_000))
    assert failed.exit_code == 2 and "Traceback" not in failed.output, failed.output
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {db}: disk full"), failed.stderr
    after_run = db_snapshot(db)
    assert after_run["integrity_check"] == "ok" and 2020 < after_run["rows:samples"] < 5020

    page_limit(1)  # SQLite keeps the file's size as the floor: no page can be added
    vocab = runner.invoke(main, ["vocab", "--db", str(db), "--objects", "5"])
    assert vocab.exit_code == 2, vocab.output
    assert vocab.stderr.startswith(f"error: {db}: disk full"), vocab.stderr
    assert db_snapshot(db) == after_run


# -- 9: workers die with their parent ------------------------------------------------------------


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_sigkill_of_run_takes_its_workers_with_it(tmp_path):
    db = tmp_path / "tags.db"
    csv = write_captions(tmp_path / "c.csv", 5000)
    proc = subprocess.Popen(
        wordsplit_cli(
            "run", "--backend", "wordsplit", "--input", csv, "--db", db,
            "--workers", "2", "--batch-size", "10", "--no-progress",
            delay=0.05,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    while not db.exists() or count_samples(db) < 20:
        assert proc.poll() is None and time.time() < deadline, "no batch committed in time"
        time.sleep(0.1)
    workers = {
        c for c in children_of(proc.pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
    }
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while any(alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    survivors = [w for w in workers if alive(w)]
    for w in survivors:  # clean up before failing
        os.kill(w, signal.SIGKILL)
    assert survivors == []


def test_import_that_hits_a_full_disk_keeps_the_old_vocabulary(tmp_path, page_limit):
    """Case 1's other half: the import replaces the vocabulary in one transaction, so a fault
    in the middle of writing (not only bad JSON) leaves the old one whole."""
    db = make_tagsdb(tmp_path / "tags.db", n=20)
    before = db_snapshot(db)
    tags = tmp_path / "object_list.csv"
    tags.write_text("tag\n" + "".join(f"tag{i}\n" for i in range(50)))
    labels = tmp_path / "object_index.json"
    labels.write_text(json.dumps({f"img{i}.jpg": [i % 50, (i * 7) % 50] for i in range(5000)}))
    page_limit(1)
    args = ["import-tagalign", "--db", str(db), "--tags", str(tags), "--labels", str(labels)]
    result = CliRunner().invoke(main, [*args, "--no-progress"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith(f"error: {db}: disk full"), result.stderr
    assert db_snapshot(db) == before
