"""tags.db opening rules: creation, WAL, version checks, foreign files, migrations, writes."""

import json
import sqlite3
from pathlib import Path

import pytest
from tagparse.db import TagsDB, caption_hash, fileformat
from tagparse.db.schema import FORMAT_NAME, FORMAT_VERSION
from tagparse.errors import FormatError, TagparseError
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.vocab import build_vocab


def _set_version(path, version: int) -> None:
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value=? WHERE key='format_version'", (str(version),))
    con.commit()
    con.close()


def test_create_writes_format_meta_and_uses_wal(tmp_path):
    db = TagsDB.open(tmp_path / "tags.db", create=True)
    assert db.get_meta("format_name") == FORMAT_NAME
    assert db.get_meta("format_version") == str(FORMAT_VERSION)
    assert db.store.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    reopened = TagsDB.open(tmp_path / "tags.db")
    assert reopened.count_samples() == 0


def test_open_missing_file_without_create_fails(tmp_path):
    with pytest.raises(TagparseError, match="no such tags.db"):
        TagsDB.open(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


def test_newer_version_is_refused_with_upgrade_hint(tmp_path):
    path = tmp_path / "tags.db"
    TagsDB.open(path, create=True).close()
    _set_version(path, FORMAT_VERSION + 1)
    with pytest.raises(FormatError, match=r"newer.*upgrade tagparse"):
        TagsDB.open(path)


def test_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "tags.db"
    path.write_text("filename,caption\na.jpg,a cat\n")
    with pytest.raises(FormatError, match="not an SQLite file"):
        TagsDB.open(path)


def test_foreign_sqlite_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(FormatError, match="not a tags.db"):
        TagsDB.open(path, create=True)
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["photos"]
    con.close()


def test_registered_migration_runs_and_bumps_version(tmp_path, monkeypatch):
    path = tmp_path / "tags.db"
    TagsDB.open(path, create=True).close()
    _set_version(path, FORMAT_VERSION - 1)

    def add_marker(con: sqlite3.Connection) -> None:
        con.execute("CREATE TABLE migrated_marker (note TEXT)")
        con.execute("INSERT INTO migrated_marker VALUES ('v0->v1')")

    monkeypatch.setitem(fileformat.MIGRATIONS, FORMAT_VERSION - 1, add_marker)
    db = TagsDB.open(path)
    assert db.get_meta("format_version") == str(FORMAT_VERSION)
    con = db.raw()
    assert con.execute("SELECT note FROM migrated_marker").fetchall() == [("v0->v1",)]
    con.close()


def test_failed_migration_rolls_back_completely(tmp_path, monkeypatch):
    path = tmp_path / "tags.db"
    TagsDB.open(path, create=True).close()
    _set_version(path, FORMAT_VERSION - 1)

    def half_done(con: sqlite3.Connection) -> None:
        con.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk full")

    monkeypatch.setitem(fileformat.MIGRATIONS, FORMAT_VERSION - 1, half_done)
    with pytest.raises(RuntimeError):
        TagsDB.open(path)
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    version = con.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()[0]
    con.close()
    assert "half_done" not in tables
    assert version == str(FORMAT_VERSION - 1)


def test_missing_migration_step_is_a_format_error(tmp_path):
    path = tmp_path / "tags.db"
    TagsDB.open(path, create=True).close()
    _set_version(path, FORMAT_VERSION - 1)
    with pytest.raises(FormatError, match="no migration"):
        TagsDB.open(path)


def test_vocab_before_any_parse_is_a_clear_error(tmp_path):
    db = TagsDB.open(tmp_path / "tags.db", create=True)
    with pytest.raises(TagparseError, match="no parses yet"):
        build_vocab(db, 10, 10)


def test_samples_first_caption_wins_and_parses_upsert(tmp_path):
    db = TagsDB.open(tmp_path / "tags.db", create=True)
    stats = db.add_samples(
        [("a", "a red car"), ("b", "a dog"), ("a", "a blue car"), ("b", "a dog")]
    )
    assert (stats.added, stats.repeated, stats.conflicts) == (2, 1, 1)
    assert db.stored_key_hashes(["a", "zzz"]) == {"a": caption_hash("a red car")}
    pid = db.register_parser(ParserSpec(backend="t", normalizer_version="1"))
    assert db.register_parser(ParserSpec(backend="t", normalizer_version="1")) == pid
    h = caption_hash("a red car")
    db.write_parses(pid, [(h, ParseResult.failure("timeout"))])
    assert db.parse_states(pid, [h, "0" * 40])[h][0] == "error"
    db.write_parses(pid, [(h, ParseResult(["car"], ["red"]))])
    assert db.parse_states(pid, [h])[h][0] == "ok"
    con = db.raw()
    assert con.execute("SELECT COUNT(*) FROM parses").fetchone()[0] == 1
    con.close()


def test_every_connection_gets_the_same_pragmas(tmp_path):
    from tagparse.db.merge import MergeTarget
    from tagparse.db.verdicts import VerdictStore

    db = TagsDB.open(tmp_path / "tags.db", create=True)
    assert db.store.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert db.store.execute("PRAGMA busy_timeout").fetchone() == (30000,)
    store, target, reader = VerdictStore(db.path), MergeTarget(db.path), db.reader()
    try:
        for con in (store.con, target.con, reader.con):
            assert con.execute("PRAGMA foreign_keys").fetchone() == (1,)
            assert con.execute("PRAGMA busy_timeout").fetchone() == (30000,)
            assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert reader.con.execute("PRAGMA query_only").fetchone() == (1,)
        with pytest.raises(sqlite3.IntegrityError):  # the review store checks references now
            store.con.execute(
                "INSERT INTO verdicts(sample_id, tag, kind, verdict, created_at) "
                "VALUES (999, 'dog', 'object', 'add', 0)"
            )
    finally:
        for closable in (store, target, reader):
            closable.close()


def test_a_new_file_has_the_v1_schema_page_for_page(tmp_path):
    """The Core tables compile to the DDL every v1 release wrote: `sqlite_master` (names, SQL
    text, root pages) equals the one a file created by the ORM-era code had (fixture written by
    `main` before the data layer moved to SQLAlchemy Core)."""
    from tagparse.db.schema import CREATION_ORDER, metadata

    assert {t.name for t in CREATION_ORDER} == set(metadata.tables)
    expected = json.loads(
        (Path(__file__).parent / "fixtures" / "sqlite_master_v1.json").read_text()
    )
    TagsDB.open(tmp_path / "tags.db", create=True).close()
    con = sqlite3.connect(tmp_path / "tags.db")
    rows = con.execute("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master").fetchall()
    con.close()
    assert [list(r) for r in rows] == expected
