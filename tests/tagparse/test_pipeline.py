"""run_parse: caching, dedupe, conflicts, failures, retry, shards, workers, bad input mid-run."""

import importlib.util
import json
import os
import sqlite3
from pathlib import Path

import pytest
from tagparse.backends import make_backend, register_backend, unregister_backend
from tagparse.errors import TagparseError
from tagparse.pipeline import run_parse, shard_of
from wordsplit_backend import BACKEND, create_needing_missing_package, wordsplit  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("wordsplit")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "captions.csv"


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("filename,caption\n")
        f.writelines(f'{key},"{caption}"\n' for key, caption in rows)
    return path


def table(db_path, sql):
    con = sqlite3.connect(db_path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_first_run_parses_rerun_uses_the_cache(tmp_path):
    db = tmp_path / "tags.db"
    first = run_parse(db, [str(EXAMPLE)], BACKEND, {}, batch_size=16, progress=False)
    n = len(EXAMPLE.read_text().splitlines()) - 1
    assert (first.records, first.parsed, first.cached, first.new_samples) == (n, n, 0, n)
    assert first.ok
    stamps = table(db, "SELECT caption_hash, created_at FROM parses ORDER BY caption_hash")
    again = run_parse(db, [str(EXAMPLE)], BACKEND, {}, batch_size=16, progress=False)
    assert (again.parsed, again.cached, again.new_samples) == (0, n, 0)
    assert table(db, "SELECT caption_hash, created_at FROM parses ORDER BY caption_hash") == stamps
    objects = json.loads(
        table(
            db,
            "SELECT p.objects FROM samples s JOIN parses p USING (caption_hash) "
            "WHERE s.key='img_0001.jpg'",
        )[0][0]
    )
    assert objects == ["grass", "kitten", "lying", "playing", "shoe"]


def test_duplicate_captions_are_parsed_once_within_and_across_batches(tmp_path):
    rows = [
        ("a", "a red car"),
        ("b", "a red car"),
        ("c", "a dog"),
        ("d", "a red car"),
        ("e", "a dog"),
    ]
    summary = run_parse(
        tmp_path / "t.db",
        [str(write_csv(tmp_path / "c.csv", rows))],
        BACKEND,
        {},
        batch_size=2,
        progress=False,
    )
    assert (summary.parsed, summary.duplicates, summary.new_samples) == (2, 3, 5)
    assert table(tmp_path / "t.db", "SELECT COUNT(*) FROM parses") == [(2,)]


def test_key_conflict_first_caption_wins_and_the_loser_is_not_parsed(tmp_path):
    rows = [("a", "a red car"), ("a", "a blue boat"), ("b", "a dog")]
    summary = run_parse(
        tmp_path / "t.db",
        [str(write_csv(tmp_path / "c.csv", rows))],
        BACKEND,
        {},
        batch_size=2,
        progress=False,
    )
    assert summary.conflicts == 1 and summary.parsed == 2
    assert table(tmp_path / "t.db", "SELECT key, caption FROM samples ORDER BY key") == [
        ("a", "a red car"),
        ("b", "a dog"),
    ]
    assert table(tmp_path / "t.db", "SELECT COUNT(*) FROM parses") == [(2,)]


def test_failures_are_recorded_and_retry_failed_reparses_only_them(tmp_path, monkeypatch):
    rows = [("a", "a red car"), ("b", "please FAIL now"), ("c", ""), ("d", "a dog")]
    db, csv = tmp_path / "t.db", str(write_csv(tmp_path / "c.csv", rows))
    first = run_parse(db, [csv], BACKEND, {}, progress=False)
    assert (first.parsed, first.failed, first.ok) == (2, 2, False)
    assert any("empty caption" in f for f in first.failures)
    assert table(db, "SELECT COUNT(*) FROM samples") == [(4,)]
    ok_stamps = table(
        db, "SELECT caption_hash, created_at FROM parses WHERE status='ok' ORDER BY 1"
    )

    second = run_parse(db, [csv], BACKEND, {}, progress=False)
    assert (second.parsed, second.failed_earlier, second.cached) == (0, 2, 2)

    monkeypatch.setenv("WORDSPLIT_FORGIVE", "1")
    retried = run_parse(db, [csv], BACKEND, {}, retry_failed=True, progress=False)
    assert (retried.parsed, retried.failed, retried.cached) == (
        1,
        1,
        2,
    )  # the empty caption stays failed
    assert (
        table(
            db,
            "SELECT caption_hash, created_at FROM parses WHERE caption_hash IN "
            f"({','.join(repr(h) for h, _ in ok_stamps)}) ORDER BY 1",
        )
        == ok_stamps
    )
    assert table(db, "SELECT status, error FROM parses WHERE status='error'") == [
        ("error", "empty caption")
    ]


def test_shards_partition_the_keys_deterministically(tmp_path):
    keys = {}
    for i in range(3):
        run_parse(tmp_path / f"s{i}.db", [str(EXAMPLE)], BACKEND, {}, shard=(i, 3), progress=False)
        keys[i] = {k for (k,) in table(tmp_path / f"s{i}.db", "SELECT key FROM samples")}
        assert keys[i] == {
            k
            for (k,) in table(tmp_path / f"s{i}.db", "SELECT key FROM samples")
            if shard_of(k, 3) == i
        }
    assert all(keys.values())
    assert sum(len(v) for v in keys.values()) == len(set().union(*keys.values())) == 62


def test_workers_give_the_same_parses_in_worker_processes(tmp_path):
    one = run_parse(tmp_path / "one.db", [str(EXAMPLE)], BACKEND, {}, batch_size=8, progress=False)
    two = run_parse(
        tmp_path / "two.db", [str(EXAMPLE)], BACKEND, {}, batch_size=8, workers=2, progress=False
    )
    assert one.parsed == two.parsed == 62
    sql = (
        "SELECT s.key, p.objects, p.attributes FROM samples s "
        "JOIN parses p USING (caption_hash) ORDER BY s.key"
    )
    assert table(tmp_path / "one.db", sql) == table(tmp_path / "two.db", sql)
    pids = {raw for (raw,) in table(tmp_path / "two.db", "SELECT raw_output FROM parses")}
    assert f"pid={os.getpid()}" not in pids and len(pids) >= 1


def test_limit_and_progress_bar(tmp_path, capsys):
    summary = run_parse(tmp_path / "t.db", [str(EXAMPLE)], BACKEND, {}, limit=10, batch_size=4)
    assert summary.records == 10 and table(tmp_path / "t.db", "SELECT COUNT(*) FROM samples") == [
        (10,)
    ]
    err = capsys.readouterr().err
    assert "caption/s" in err and "10/10" in err


def test_bad_input_mid_run_keeps_everything_read_before_it(tmp_path):
    p = tmp_path / "c.csv"
    good = "".join(f"k{i},caption number {i}\n" for i in range(25))
    p.write_bytes(b"filename,caption\n" + good.encode() + b"bad,caf\xe9\n" + b"k99,after\n")
    with pytest.raises(TagparseError, match="line 27: not UTF-8"):
        run_parse(tmp_path / "t.db", [str(p)], BACKEND, {}, batch_size=10, progress=False)
    assert table(tmp_path / "t.db", "SELECT COUNT(*) FROM samples") == [(25,)]
    assert table(tmp_path / "t.db", "SELECT COUNT(*) FROM parses") == [(25,)]


def test_bad_arguments(tmp_path):
    for kwargs, message in [
        ({"shard": (3, 3)}, "--shard"),
        ({"batch_size": 0}, "--batch-size"),
        ({"workers": 0}, "--workers"),
    ]:
        with pytest.raises(TagparseError, match=message):
            run_parse(tmp_path / "t.db", [str(EXAMPLE)], BACKEND, {}, progress=False, **kwargs)
    assert not (tmp_path / "t.db").exists()


def test_registry_errors_are_one_line_with_the_fix():
    with pytest.raises(TagparseError, match=r"unknown backend 'nope'; choose one of: .*spacy"):
        make_backend("nope")
    register_backend("needs-extra", create_needing_missing_package)
    try:
        with pytest.raises(
            TagparseError,
            match=r"needs 'tagparse_test_dependency_that_is_not_installed'.*"
            r"pip install 'tagparse\[needs-extra\]'",
        ):
            make_backend("needs-extra")
    finally:
        unregister_backend("needs-extra")


@pytest.mark.skipif(
    importlib.util.find_spec("spacy") is None
    or importlib.util.find_spec("tagparse.backends.spacy_backend") is None,
    reason="spaCy backend not installed",
)
def test_real_spacy_backend_end_to_end(tmp_path):
    db = tmp_path / "t.db"
    summary = run_parse(db, [str(EXAMPLE)], "spacy", {}, batch_size=32, progress=False)
    assert summary.parsed == 62 and summary.ok
    row = table(
        db,
        "SELECT p.objects, p.attributes FROM samples s JOIN parses p USING (caption_hash) "
        "WHERE s.key='img_0001.jpg'",
    )[0]
    assert "kitten" in json.loads(row[0]) and "brown" in json.loads(row[1])
    assert run_parse(db, [str(EXAMPLE)], "spacy", {}, progress=False).cached == 62
