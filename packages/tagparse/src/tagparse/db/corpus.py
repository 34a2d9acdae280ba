"""Read queries on samples, parsers and parses (the corpus and its cached parses).

Tag lists come back as the stored JSON text: callers decode only the rows they keep, and the
vocabulary build hands both lists of a row to the JSON scanner in one string.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from tagparse.db.connection import chunks, marks

ParserRow = tuple[int, str, str, str]  # (id, fingerprint, backend, model)


class CorpusReads:
    con: sqlite3.Connection

    # -- samples ---------------------------------------------------------------------------------
    def count_samples(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def count_distinct_captions(self) -> int:
        return self.con.execute("SELECT COUNT(DISTINCT caption_hash) FROM samples").fetchone()[0]

    def sample_id_range(self) -> tuple[int | None, int | None, int]:
        """(smallest id, largest id, number of samples)."""
        return self.con.execute("SELECT MIN(id), MAX(id), COUNT(*) FROM samples").fetchone()

    def ordered_sample_ids(self) -> Iterator[int]:
        return (r[0] for r in self.con.execute("SELECT id FROM samples ORDER BY id"))

    def sample(self, sample_id: int) -> tuple[str, str, str]:
        """(key, caption, caption hash) of one sample."""
        return self.con.execute(
            "SELECT key, caption, caption_hash FROM samples WHERE id=?", (sample_id,)
        ).fetchone()

    # -- parsers ---------------------------------------------------------------------------------
    def parser_rows(self) -> list[ParserRow]:
        return self.con.execute(
            "SELECT id, fingerprint, backend, model FROM parsers ORDER BY id"
        ).fetchall()

    # -- parses ----------------------------------------------------------------------------------
    def count_ok_parses(self, parser_id: int) -> int:
        return self.con.execute(
            "SELECT COUNT(*) FROM parses WHERE parser_id=? AND status='ok'", (parser_id,)
        ).fetchone()[0]

    def parse_status_counts(self, parser_id: int) -> dict[str, int]:
        return dict(
            self.con.execute(
                "SELECT status, COUNT(*) FROM parses WHERE parser_id=? GROUP BY status",
                (parser_id,),
            ).fetchall()
        )

    def parses_of_caption(self, caption_hash: str) -> list[tuple[int, str, str, str, str]]:
        """(parser id, status, error, objects, attributes) of every parse of one caption."""
        return self.con.execute(
            "SELECT parser_id, status, error, objects, attributes FROM parses "
            "WHERE caption_hash=? ORDER BY parser_id",
            (caption_hash,),
        ).fetchall()

    def ok_parses_among(self, parser_id: int, hashes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """caption hash -> (objects, attributes) of this parser's successful parses of `hashes`."""
        found = {}
        for chunk in chunks(list(hashes)):
            rows = self.con.execute(
                "SELECT caption_hash, objects, attributes FROM parses WHERE parser_id=? "
                f"AND status='ok' AND caption_hash IN ({marks(len(chunk))})",
                [parser_id, *chunk],
            )
            found.update((h, (objs, attrs)) for h, objs, attrs in rows)
        return found

    def tag_lists_by_sample(self, parser_id: int) -> Iterator[tuple[int, str]]:
        """(sample id, `[objects, attributes]` as one JSON text) of parsed samples, by id."""
        return self.con.execute(
            "SELECT s.id, '[' || p.objects || ',' || p.attributes || ']' FROM samples s "
            "JOIN parses p ON p.caption_hash = s.caption_hash AND p.parser_id = ? "
            "AND p.status = 'ok' ORDER BY s.id",
            (parser_id,),
        )

    def ok_parses_with_sample_counts(self, parser_id: int) -> Iterator[tuple[str, str, int]]:
        """(objects, attributes, samples with that caption) per successfully parsed caption."""
        return self.con.execute(
            "SELECT p.objects, p.attributes, n.n FROM parses p JOIN "
            "(SELECT caption_hash, COUNT(*) AS n FROM samples GROUP BY caption_hash) n "
            "ON n.caption_hash = p.caption_hash WHERE p.parser_id=? AND p.status='ok'",
            (parser_id,),
        )

    def samples_with_parse(
        self, parser_id: int
    ) -> Iterator[tuple[str, str, str | None, str | None, str | None, str | None]]:
        """(key, caption, status, objects, attributes, error) of every sample, by id; the parse
        columns are None where this parser has not parsed the caption."""
        return self.con.execute(
            "SELECT s.key, s.caption, p.status, p.objects, p.attributes, p.error FROM samples s "
            "LEFT JOIN parses p ON p.caption_hash = s.caption_hash AND p.parser_id = ? "
            "ORDER BY s.id",
            (parser_id,),
        )
