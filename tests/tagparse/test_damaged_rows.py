"""A tags.db with damaged rows (issue 24, part 3): each reader names the table, the row and the fix.

The files are real tags.db files (built by the wordsplit test backend), then damaged with plain
sqlite3 the way a hand edit or another program would: a label blob that is not whole int32
indices or points past the vocabulary, an `objects` that is not JSON or not a list of strings.
One real subprocess per command (`tagparse export`, `tagparse vocab`); the other cases go through
click's CliRunner or the Python API (`load_labels`). The trainer's `--labels` case is in
tests/train/test_cli_faults.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cli_checks import assert_user_error, cli_path, db_snapshot, run_cli
from click.testing import CliRunner
from tagparse.cli import main
from tagparse.errors import TagparseError
from tagparse.reader import load_labels
from tagsdb_factory import make_tagsdb

TAGPARSE = cli_path("tagparse")
KEY = "000007.jpg"  # the damaged sample


@pytest.fixture
def db(tmp_path) -> Path:
    return make_tagsdb(tmp_path / "tags.db", n=20)


def _damage(db: Path, sql: str, *params: object) -> None:
    con = sqlite3.connect(db)
    try:
        sample_id = con.execute("SELECT id FROM samples WHERE key = ?", (KEY,)).fetchone()[0]
        with con:
            con.execute(sql, (*params, sample_id))
    finally:
        con.close()


def _damage_labels(db: Path, blob: object) -> None:
    _damage(db, "UPDATE labels SET objects = ? WHERE sample_id = ?", blob)


def _damage_parse(db: Path, objects: str) -> None:
    _damage(
        db,
        "UPDATE parses SET objects = ? WHERE caption_hash = "
        "(SELECT caption_hash FROM samples WHERE id = ?)",
        objects,
    )


def _cli_error(*args: object) -> str:
    """Run `tagparse ARGS` in-process; assert one error line and exit 2; return the line."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_export_tagalign_names_a_label_blob_of_the_wrong_size(db, tmp_path):
    _damage_labels(db, b"\x01\x00\x00\x00\x02\x00\x00")  # 7 bytes: not whole int32 indices
    out = tmp_path / "export"
    proc = run_cli([TAGPARSE, "export", "--db", db, "--format", "tagalign", "-o", out])
    assert_user_error(proc, str(db), "table labels", repr(KEY), "7 bytes", "tagparse vocab --db")
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize(
    ("blob", "says"),
    [
        (b"\x01\x00\x00", "3 bytes"),
        ("[1, 2]", "column is text"),
        ((10**6).to_bytes(4, "little"), "tag index 1000000"),
        ((-1).to_bytes(4, "little", signed=True), "tag index -1"),
    ],
)
def test_load_labels_names_the_damaged_label_row(db, blob, says):
    _damage_labels(db, blob)
    with pytest.raises(TagparseError) as caught:
        load_labels(db)
    line = str(caught.value)
    assert "\n" not in line
    for fragment in ("table labels", repr(KEY), says, f"tagparse vocab --db {db}"):
        assert fragment in line, line


def test_a_blob_whose_size_error_cancels_out_is_still_found(db):
    """Two rows 2 bytes off each make a whole number of int32s together: read as one stream,
    every later sample's labels would shift silently."""
    _damage_labels(db, b"\x01\x00\x00\x00\x02\x00")
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "UPDATE labels SET objects = X'010000000200' WHERE sample_id = "
            "(SELECT id FROM samples WHERE key = '000009.jpg')"
        )
    con.close()
    with pytest.raises(TagparseError, match=r"sample '000007.jpg'.*6 bytes"):
        load_labels(db)


def test_vocab_names_a_parse_that_is_not_json_and_keeps_the_old_vocabulary(db):
    _damage_parse(db, '["car", "tree"')
    before = db_snapshot(db)
    proc = run_cli([TAGPARSE, "vocab", "--db", db])
    line = assert_user_error(proc, str(db), "table parses", repr(KEY), "objects is not JSON")
    assert "DELETE FROM parses WHERE" in line and "tagparse run" in line
    assert db_snapshot(db) == before


@pytest.mark.parametrize(
    ("objects", "says"),
    [
        ('"car tree"', "objects is a JSON str, not a list of strings"),
        ('{"car": 1}', "objects is a JSON dict, not a list of strings"),
        ('["car", 7]', "objects holds 7, not only strings"),
        ('["car", ["tree"]]', 'objects holds ["tree"], not only strings'),
        ('["car"]]', "objects is not JSON"),
    ],
)
def test_vocab_names_a_parse_that_is_not_a_list_of_strings(db, objects, says):
    _damage_parse(db, objects)
    before = db_snapshot(db)
    line = _cli_error("vocab", "--db", db)
    assert "table parses" in line and repr(KEY) in line and says in line, line
    assert db_snapshot(db) == before


@pytest.mark.parametrize(
    ("objects", "says"),
    [('["car", "tree"', "objects is not JSON"), ("[3]", "objects holds 3, not only strings")],
)
def test_export_jsonl_names_the_damaged_parse(db, tmp_path, objects, says):
    _damage_parse(db, objects)
    out = tmp_path / "tags.jsonl"
    line = _cli_error("export", "--db", db, "--format", "jsonl", "-o", out)
    assert "table parses" in line and repr(KEY) in line and says in line, line
    assert not out.exists()


def test_stats_names_the_damaged_parse(db):
    _damage_parse(db, '{"car": 1}')
    before = db_snapshot(db)
    line = _cli_error("stats", "--db", db)
    assert "table parses" in line and repr(KEY) in line and "objects is a JSON dict" in line, line
    assert "DELETE FROM parses WHERE" in line, line
    assert db_snapshot(db) == before


def test_score_names_the_damaged_parse(db, tmp_path):
    _damage_parse(db, '["car", 7]')
    gold = tmp_path / "gold.csv"
    caption = "a red car number 7 near a tall tree"  # the damaged sample's caption
    gold.write_text(f'caption,scene_graph\n{caption},"( car ) , ( tree )"\n', encoding="utf-8")
    line = _cli_error("score", "--gold", gold, "--db", db)
    assert "table parses" in line and repr(KEY) in line and "objects holds 7" in line, line
