"""Each bad-input case of `tagparse run`/`vocab`/`stats`: a one-line `error:` (exit 2) or a
recorded failure/warning — never a traceback, and nothing already written is lost."""

import io
import sqlite3
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from tagparse.cli import main
from tagparse.db import TagsDB
from wordsplit_backend import BACKEND, wordsplit  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("wordsplit")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "captions.csv"


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def run(db, *inputs, extra=()):
    args = ["run", "--backend", BACKEND, "--db", db, "--no-progress", *extra]
    for i in inputs:
        args += ["--input", i]
    return cli(*args)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "tags.db"


def test_missing_input(db, tmp_path):
    assert_one_line_error(run(db, tmp_path / "nope.csv"), "nope.csv", "no such input file")


def test_missing_caption_column(db, tmp_path):
    (tmp_path / "c.csv").write_text("filename,text\na.jpg,cat\n")
    assert_one_line_error(
        run(db, tmp_path / "c.csv"), "c.csv", "no column 'caption'", "--caption-column"
    )


def test_malformed_csv_row_keeps_earlier_batches(db, tmp_path):
    good = "".join(f"k{i},caption {i}\n" for i in range(30))
    (tmp_path / "c.csv").write_text("filename,caption\n" + good + "bad,x,y\n")
    assert_one_line_error(
        run(db, tmp_path / "c.csv", extra=["--batch-size", "8"]), "line 32", "malformed CSV row"
    )
    assert TagsDB.open(db).count_samples() == 30


def test_non_utf8(db, tmp_path):
    (tmp_path / "c.csv").write_bytes(b"filename,caption\na.jpg,caf\xe9\n")
    assert_one_line_error(run(db, tmp_path / "c.csv"), "c.csv: line 2: not UTF-8")


def test_empty_caption_is_a_failed_sample_and_the_run_continues(db, tmp_path):
    (tmp_path / "c.csv").write_text('filename,caption\na.jpg,a cat\nb.jpg,""\nc.jpg,a dog\n')
    result = run(db, tmp_path / "c.csv")
    assert result.exit_code == 1
    assert "failed 1" in result.stdout and "b.jpg: empty caption" in result.stdout
    assert TagsDB.open(db).count_samples() == 3


def test_huge_caption_is_truncated_with_a_warning(db, tmp_path):
    (tmp_path / "c.csv").write_text("filename,caption\nbig.jpg," + "a" * 100_000 + "\n")
    result = run(db, tmp_path / "c.csv")
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "truncated to 10,000" in result.stderr
    assert "truncated 1" in result.stdout


def test_duplicate_keys_with_different_captions_are_counted(db, tmp_path):
    (tmp_path / "c.csv").write_text("filename,caption\na.jpg,a cat\na.jpg,a dog\n")
    result = run(db, tmp_path / "c.csv")
    assert result.exit_code == 0 and "key conflicts 1" in result.stdout


def test_truncated_tar_shard_keeps_what_was_read(db, tmp_path):
    with tarfile.open(tmp_path / "full.tar", "w") as tar:
        for i in range(10):
            data = f"caption {i}".encode()
            info = tarfile.TarInfo(f"{i:09d}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = (tmp_path / "full.tar").read_bytes()
    (tmp_path / "00000.tar").write_bytes(data[: 512 * 10 + 100])  # cut inside the sixth member
    result = run(db, tmp_path / "0000{0..0}.tar")
    assert result.exit_code == 0
    assert "truncated tar shard after 5 samples" in result.stderr
    assert TagsDB.open(db).count_samples() == 5


def test_newer_version_db(db):
    TagsDB.open(db, create=True).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='99' WHERE key='format_version'")
    con.commit()
    con.close()
    assert_one_line_error(run(db, EXAMPLE), "v99 is newer", "upgrade tagparse")
    assert_one_line_error(cli("stats", "--db", db), "v99 is newer")


def test_not_sqlite_db(db):
    db.write_text("hello")
    assert_one_line_error(run(db, EXAMPLE), "not an SQLite file")
    assert db.read_text() == "hello"


def test_vocab_before_parse(db):
    TagsDB.open(db, create=True).close()
    assert_one_line_error(cli("vocab", "--db", db), "no parses yet", "tagparse run")


def test_unknown_backend_and_bad_shard(db):
    assert_one_line_error(
        cli("run", "--backend", "nope", "--input", EXAMPLE, "--db", db), "unknown backend 'nope'"
    )
    assert_one_line_error(
        cli("run", "--backend", "nope", "--input", EXAMPLE, "--db", db, "--shard", "2"),
        "expected I/N",
    )


def test_successful_run_stats_export_merge(db, tmp_path):
    assert run(db, EXAMPLE, extra=["--shard", "0/2"]).exit_code == 0
    assert run(tmp_path / "b.db", EXAMPLE, extra=["--shard", "1/2"]).exit_code == 0
    merged = cli("merge", db, tmp_path / "b.db", "-o", tmp_path / "all.db")
    assert merged.exit_code == 0 and "0 conflicts" in merged.stdout
    assert cli("vocab", "--db", tmp_path / "all.db", "--objects", "20").exit_code == 0
    stats = cli("stats", "--db", tmp_path / "all.db")
    assert (
        "62 samples" in stats.stdout and "100.0% of samples have at least one tag" in stats.stdout
    )
    exported = cli(
        "export", "--db", tmp_path / "all.db", "--format", "tagalign", "-o", tmp_path / "ta"
    )
    assert exported.exit_code == 0
    imported = cli(
        "import-tagalign",
        "--db",
        tmp_path / "imp.db",
        "--tags",
        tmp_path / "ta" / "object_list.csv",
        "--labels",
        tmp_path / "ta" / "object_index.json",
        "--no-progress",
    )
    assert imported.exit_code == 0 and "imported 62 samples" in imported.stdout
