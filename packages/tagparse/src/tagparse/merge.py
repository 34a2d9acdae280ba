"""`tagparse merge`: union of tags.db files parsed in shards (`tagparse run --shard I/N`).

Each source is attached read-only and copied with set-based SQL in one transaction, so merging
millions of rows takes seconds and a killed merge leaves whole sources only. Rows are matched by
their natural keys (sample key, parser fingerprint, caption hash); a conflict keeps what the
output already has (a successful parse beats a failed one) and is counted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from tagparse.db import TagsDB
from tagparse.errors import TagparseError
from tagparse.schema import FORMAT_NAME, FORMAT_VERSION


@dataclass
class SourceSummary:
    path: str
    samples_added: int = 0
    parsers_added: int = 0
    parses_added: int = 0
    verdicts_added: int = 0
    key_conflicts: int = 0  # same key, different caption: the output's caption stays
    parse_conflicts: int = 0  # same caption and parser, different tags: the output's parse stays


@dataclass
class MergeSummary:
    out: str
    sources: list[SourceSummary] = field(default_factory=list)
    vocab_cleared: bool = False

    @property
    def conflicts(self) -> int:
        return sum(s.key_conflicts + s.parse_conflicts for s in self.sources)

    def lines(self) -> list[str]:
        out = [
            f"{s.path}: +{s.samples_added:,} samples, +{s.parses_added:,} parses, "
            f"+{s.parsers_added} parsers, +{s.verdicts_added:,} verdicts; conflicts: "
            f"{s.key_conflicts:,} keys with another caption, {s.parse_conflicts:,} parses with other tags"
            for s in self.sources
        ]
        out.append(
            f"merged {len(self.sources)} file(s) into {self.out}; {self.conflicts:,} conflicts "
            "(the first file's rows were kept)"
        )
        if self.vocab_cleared:
            out.append(f"the vocabulary was cleared; run `tagparse vocab --db {self.out}`")
        return out


def merge_dbs(sources: list[str | Path], out: str | Path) -> MergeSummary:
    """Merge `sources` into `out` (created if missing); sources must have this format version."""
    out = Path(out)
    if not sources:
        raise TagparseError("nothing to merge; pass one or more tags.db files")
    for src in sources:
        if Path(src).resolve() == out.resolve():
            raise TagparseError(f"{src}: is also the output; choose another -o file")
        _check_source(Path(src))
    TagsDB.open(out, create=True).engine.dispose()  # creates, validates or migrates the output
    summary = MergeSummary(str(out))
    con = sqlite3.connect(out, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        for src in sources:
            summary.sources.append(_merge_one(con, Path(src)))
        if any(s.samples_added or s.parses_added or s.verdicts_added for s in summary.sources):
            summary.vocab_cleared = _clear_vocab(con)
    finally:
        con.close()
    return summary


def _check_source(path: Path) -> None:
    """Same format and version as this tagparse; an older source would need an in-place migration."""
    if not path.exists():
        raise TagparseError(f"{path}: no such tags.db")
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise TagparseError(
                f"{path}: not an SQLite file; pass tags.db files written by tagparse"
            )
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError:
        raise TagparseError(f"{path}: an SQLite file but not a tags.db (no meta table)") from None
    finally:
        con.close()
    if meta.get("format_name") != FORMAT_NAME:
        raise TagparseError(f"{path}: format {meta.get('format_name')!r} is not {FORMAT_NAME!r}")
    version = int(meta.get("format_version", "0"))
    if version != FORMAT_VERSION:
        hint = (
            "upgrade tagparse"
            if version > FORMAT_VERSION
            else f"migrate it first (`tagparse stats --db {path}` opens and migrates it)"
        )
        raise TagparseError(
            f"{path}: format v{version}, but merging needs v{FORMAT_VERSION}; {hint}"
        )


def _merge_one(con: sqlite3.Connection, path: Path) -> SourceSummary:
    s = SourceSummary(str(path))
    con.execute("ATTACH DATABASE ? AS src", (f"file:{path}?mode=ro",))
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            _copy(con, s)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute("DETACH DATABASE src")
    return s


def _copy(con: sqlite3.Connection, s: SourceSummary) -> None:
    def count(sql: str) -> int:
        return con.execute(sql).fetchone()[0]

    def changes(sql: str) -> int:
        return con.execute(sql).rowcount

    s.parsers_added = changes(
        "INSERT OR IGNORE INTO main.parsers(fingerprint, backend, model, prompt_id, prompt_hash, "
        "normalizer_version, params, created_at) SELECT fingerprint, backend, model, prompt_id, prompt_hash, "
        "normalizer_version, params, created_at FROM src.parsers ORDER BY id"
    )
    con.execute("DROP TABLE IF EXISTS temp.pmap")
    con.execute(
        "CREATE TEMP TABLE pmap AS SELECT s.id AS src_id, m.id AS dst_id FROM src.parsers s "
        "JOIN main.parsers m ON m.fingerprint = s.fingerprint"
    )
    s.key_conflicts = count(
        "SELECT COUNT(*) FROM src.samples s JOIN main.samples m ON m.key = s.key "
        "WHERE m.caption_hash != s.caption_hash"
    )
    s.samples_added = changes(
        "INSERT OR IGNORE INTO main.samples(key, caption, caption_hash) "
        "SELECT key, caption, caption_hash FROM src.samples ORDER BY id"
    )
    s.parse_conflicts = count(
        "SELECT COUNT(*) FROM src.parses p JOIN temp.pmap ON pmap.src_id = p.parser_id "
        "JOIN main.parses m ON m.caption_hash = p.caption_hash AND m.parser_id = pmap.dst_id "
        "WHERE m.status = 'ok' AND p.status = 'ok' AND (m.objects != p.objects OR m.attributes != p.attributes)"
    )
    columns = "caption_hash, parser_id, objects, attributes, raw_output, status, error, created_at"
    select = (
        "SELECT p.caption_hash, pmap.dst_id, p.objects, p.attributes, p.raw_output, p.status, p.error, "
        "p.created_at FROM src.parses p JOIN temp.pmap ON pmap.src_id = p.parser_id"
    )
    upgraded = changes(  # a failed parse in the output is replaced by the source's successful one
        f"INSERT INTO main.parses({columns}) {select} WHERE p.status = 'ok' "
        "ON CONFLICT(caption_hash, parser_id) DO UPDATE SET objects=excluded.objects, "
        "attributes=excluded.attributes, raw_output=excluded.raw_output, status=excluded.status, "
        "error=excluded.error, created_at=excluded.created_at WHERE status = 'error'"
    )
    s.parses_added = upgraded + changes(f"INSERT OR IGNORE INTO main.parses({columns}) {select}")
    s.verdicts_added = changes(
        "INSERT INTO main.verdicts(sample_id, parser_id, tag, kind, verdict, created_at) "
        "SELECT ms.id, pmap.dst_id, v.tag, v.kind, v.verdict, v.created_at FROM src.verdicts v "
        "JOIN src.samples ss ON ss.id = v.sample_id JOIN main.samples ms ON ms.key = ss.key "
        "LEFT JOIN temp.pmap ON pmap.src_id = v.parser_id "
        "WHERE NOT EXISTS (SELECT 1 FROM main.verdicts mv WHERE mv.sample_id = ms.id AND mv.tag = v.tag "
        "AND mv.kind = v.kind AND mv.verdict = v.verdict AND mv.created_at = v.created_at) "
        "ORDER BY v.created_at, v.id"
    )


def _clear_vocab(con: sqlite3.Connection) -> bool:
    """Labels are derived from parses; after new rows arrive they must be rebuilt, not kept stale."""
    had = (
        con.execute("SELECT COUNT(*) FROM main.meta WHERE key = 'vocab_fingerprint'").fetchone()[0]
        > 0
    )
    con.execute("BEGIN IMMEDIATE")
    con.execute("DELETE FROM main.labels")
    con.execute("DELETE FROM main.vocab")
    con.execute("DELETE FROM main.meta WHERE key LIKE 'vocab_%'")
    con.execute("COMMIT")
    return had
