"""Set-based copy of one tags.db into another (the SQL behind `tagparse merge`).

The source is attached read-only and copied in one transaction, so merging millions of rows takes
seconds and a killed merge leaves whole sources only. Rows are matched by their natural keys
(sample key, parser fingerprint, caption hash); a conflict keeps what the output already has (a
successful parse beats a failed one) and is counted.
"""

from __future__ import annotations

from pathlib import Path

from tagparse.db.connection import connect, immediate, read_only_uri

_PARSER_COLUMNS = (
    "fingerprint, backend, model, prompt_id, prompt_hash, normalizer_version, params, created_at"
)
_PARSE_COLUMNS = (
    "caption_hash, parser_id, objects, attributes, raw_output, status, error, created_at"
)
_SOURCE_PARSES = (
    "SELECT p.caption_hash, pmap.dst_id, p.objects, p.attributes, p.raw_output, p.status, "
    "p.error, p.created_at FROM src.parses p JOIN temp.pmap ON pmap.src_id = p.parser_id"
)


class MergeTarget:
    """The output file of a merge, open on one plain connection for the whole merge."""

    def __init__(self, path: str | Path):
        self.con = connect(path)

    def close(self) -> None:
        self.con.close()

    def copy_from(self, source: Path) -> dict[str, int]:
        """Copy one source in one transaction; counts keyed like `merge.SourceSummary`."""
        self.con.execute("ATTACH DATABASE ? AS src", (read_only_uri(source),))
        try:
            with immediate(self.con):
                return self._copy()
        finally:
            self.con.execute("DETACH DATABASE src")

    def _count(self, sql: str) -> int:
        return self.con.execute(sql).fetchone()[0]

    def _changes(self, sql: str) -> int:
        return self.con.execute(sql).rowcount

    def _copy(self) -> dict[str, int]:
        n: dict[str, int] = {}
        n["parsers_added"] = self._changes(
            f"INSERT OR IGNORE INTO main.parsers({_PARSER_COLUMNS}) "
            f"SELECT {_PARSER_COLUMNS} FROM src.parsers ORDER BY id"
        )
        self.con.execute("DROP TABLE IF EXISTS temp.pmap")
        self.con.execute(
            "CREATE TEMP TABLE pmap AS SELECT s.id AS src_id, m.id AS dst_id FROM src.parsers s "
            "JOIN main.parsers m ON m.fingerprint = s.fingerprint"
        )
        n["key_conflicts"] = self._count(
            "SELECT COUNT(*) FROM src.samples s JOIN main.samples m ON m.key = s.key "
            "WHERE m.caption_hash != s.caption_hash"
        )
        n["samples_added"] = self._changes(
            "INSERT OR IGNORE INTO main.samples(key, caption, caption_hash) "
            "SELECT key, caption, caption_hash FROM src.samples ORDER BY id"
        )
        n["parse_conflicts"] = self._count(
            "SELECT COUNT(*) FROM src.parses p JOIN temp.pmap ON pmap.src_id = p.parser_id "
            "JOIN main.parses m ON m.caption_hash = p.caption_hash AND m.parser_id = pmap.dst_id "
            "WHERE m.status = 'ok' AND p.status = 'ok' "
            "AND (m.objects != p.objects OR m.attributes != p.attributes)"
        )
        upgraded = self._changes(  # a failed parse in the output gives way to a successful one
            f"INSERT INTO main.parses({_PARSE_COLUMNS}) {_SOURCE_PARSES} WHERE p.status = 'ok' "
            "ON CONFLICT(caption_hash, parser_id) DO UPDATE SET objects=excluded.objects, "
            "attributes=excluded.attributes, raw_output=excluded.raw_output, "
            "status=excluded.status, error=excluded.error, created_at=excluded.created_at "
            "WHERE status = 'error'"
        )
        n["parses_added"] = upgraded + self._changes(
            f"INSERT OR IGNORE INTO main.parses({_PARSE_COLUMNS}) {_SOURCE_PARSES}"
        )
        n["verdicts_added"] = self._changes(
            "INSERT INTO main.verdicts(sample_id, parser_id, tag, kind, verdict, created_at) "
            "SELECT ms.id, pmap.dst_id, v.tag, v.kind, v.verdict, v.created_at "
            "FROM src.verdicts v "
            "JOIN src.samples ss ON ss.id = v.sample_id JOIN main.samples ms ON ms.key = ss.key "
            "LEFT JOIN temp.pmap ON pmap.src_id = v.parser_id "
            "WHERE NOT EXISTS (SELECT 1 FROM main.verdicts mv WHERE mv.sample_id = ms.id "
            "AND mv.tag = v.tag AND mv.kind = v.kind AND mv.verdict = v.verdict "
            "AND mv.created_at = v.created_at) "
            "ORDER BY v.created_at, v.id"
        )
        return n
