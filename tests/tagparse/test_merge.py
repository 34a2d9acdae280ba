"""Merging shard files: union equals a single run, conflicts counted, versions checked."""

import sqlite3
from pathlib import Path

import pytest
from tagparse.db import TagsDB, caption_hash
from tagparse.db.schema import FORMAT_VERSION
from tagparse.errors import TagparseError
from tagparse.merge import merge_dbs
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.pipeline import run_parse
from tagparse.vocab import build_vocab
from wordsplit_backend import BACKEND, wordsplit  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("wordsplit")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "captions.csv"
SPEC = ParserSpec(backend="hand", normalizer_version="1")


def rows(db_path, sql):
    con = sqlite3.connect(db_path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def small_db(path, samples, parses, verdict=None):
    db = TagsDB.open(path, create=True)
    db.add_samples(samples)
    pid = db.register_parser(SPEC)
    db.write_parses(pid, [(caption_hash(c), r) for c, r in parses])
    if verdict:
        with db.transaction() as raw:
            sid = raw.execute("SELECT id FROM samples WHERE key=?", (verdict[0],)).fetchone()[0]
            raw.execute(
                "INSERT INTO verdicts(sample_id, parser_id, tag, kind, verdict, created_at) "
                "VALUES (?, ?, ?, 'object', 'reject', 1000.0)",
                (sid, pid, verdict[1]),
            )
    db.close()
    return path


def test_merged_shards_equal_a_single_run(tmp_path):
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"shard{i}.db")
        run_parse(shards[-1], [str(EXAMPLE)], BACKEND, {}, shard=(i, 3), progress=False)
    run_parse(tmp_path / "single.db", [str(EXAMPLE)], BACKEND, {}, progress=False)
    summary = merge_dbs(shards, tmp_path / "merged.db")
    assert summary.conflicts == 0 and sum(s.samples_added for s in summary.sources) == 62
    sql = (
        "SELECT s.key, s.caption, p.objects, p.attributes, p.status, r.fingerprint FROM samples s "
        "JOIN parses p USING (caption_hash) JOIN parsers r ON r.id = p.parser_id ORDER BY s.key"
    )
    assert rows(tmp_path / "merged.db", sql) == rows(tmp_path / "single.db", sql)
    again = merge_dbs(shards, tmp_path / "merged.db")  # idempotent
    assert sum(s.samples_added + s.parses_added + s.verdicts_added for s in again.sources) == 0
    assert rows(tmp_path / "merged.db", "SELECT COUNT(*) FROM samples") == [(62,)]


def test_conflicts_are_counted_and_the_first_file_wins(tmp_path):
    a = small_db(
        tmp_path / "a.db",
        [("k1", "a red car"), ("k2", "a dog")],
        [("a red car", ParseResult(["car"], ["red"])), ("a dog", ParseResult.failure("timeout"))],
        verdict=("k1", "car"),
    )
    b = small_db(
        tmp_path / "b.db",
        [("k1", "a blue boat"), ("k2", "a dog"), ("k3", "a red car")],
        [
            ("a blue boat", ParseResult(["boat"], ["blue"])),
            ("a dog", ParseResult(["dog"], [])),
            ("a red car", ParseResult(["automobile"], ["red"])),
        ],
        verdict=("k2", "dog"),
    )
    summary = merge_dbs([a, b], tmp_path / "out.db")
    src_b = summary.sources[1]
    assert (src_b.key_conflicts, src_b.parse_conflicts) == (1, 1)
    assert summary.conflicts == 2
    out = tmp_path / "out.db"
    assert rows(out, "SELECT key, caption FROM samples ORDER BY key") == [
        ("k1", "a red car"),
        ("k2", "a dog"),
        ("k3", "a red car"),
    ]
    parses = dict(rows(out, "SELECT caption_hash, objects FROM parses"))
    assert parses[caption_hash("a red car")] == '["car"]'  # first file's parse kept
    assert parses[caption_hash("a dog")] == '["dog"]'  # a failed parse is replaced by a good one
    assert rows(
        out, "SELECT s.key, v.tag FROM verdicts v JOIN samples s ON s.id = v.sample_id ORDER BY 1"
    ) == [("k1", "car"), ("k2", "dog")]
    assert any("2 conflicts" in line for line in summary.lines())


def test_merge_clears_a_stale_vocabulary(tmp_path):
    a = small_db(
        tmp_path / "a.db", [("k1", "a red car")], [("a red car", ParseResult(["car"], ["red"]))]
    )
    out = small_db(tmp_path / "out.db", [("k0", "a dog")], [("a dog", ParseResult(["dog"], []))])
    build_vocab(TagsDB.open(out), 10, 10, progress=False)
    summary = merge_dbs([a], out)
    assert summary.vocab_cleared
    assert rows(out, "SELECT COUNT(*) FROM labels") == [(0,)]
    assert rows(out, "SELECT COUNT(*) FROM meta WHERE key = 'vocab_fingerprint'") == [(0,)]


def test_merge_requires_the_same_format_version(tmp_path):
    a = small_db(tmp_path / "a.db", [("k1", "x")], [])
    con = sqlite3.connect(a)
    con.execute("UPDATE meta SET value=? WHERE key='format_version'", (str(FORMAT_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(
        TagparseError, match=rf"format v{FORMAT_VERSION + 1}, but merging needs v{FORMAT_VERSION}"
    ):
        merge_dbs([a], tmp_path / "out.db")
    (tmp_path / "junk.db").write_text("not a database")
    with pytest.raises(TagparseError, match="not an SQLite file"):
        merge_dbs([tmp_path / "junk.db"], tmp_path / "out.db")
    with pytest.raises(TagparseError, match="also the output"):
        merge_dbs([a], a)
