"""Read queries behind the review orders and the per-parser scores.

They join only what a review needs: pairs of parsers starting from the smaller one, the few
reviewed samples, one tag's samples. SQLite keeps only rows whose stored tag lists differ as
text; callers compare the decoded lists as sets.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence

from tagparse.db.connection import chunks, id_list, marks


class ReviewReads:
    con: sqlite3.Connection

    def ok_parse_counts(self, parser_ids: Sequence[int]) -> dict[int, int]:
        """parser id -> number of successful parses, for the parsers that have any."""
        return dict(
            self.con.execute(
                "SELECT parser_id, COUNT(*) FROM parses WHERE status = 'ok' "
                f"AND parser_id IN ({id_list(parser_ids)}) GROUP BY parser_id"
            )
        )

    def differing_parses(self, small: int, large: int) -> Iterator[tuple[int, str, str, str, str]]:
        """(sample id, objects and attributes by `small`, the same by `large`) where they differ.

        The join starts from `small`, the parser with fewer parses (often an LLM run on a
        subset), so the cost follows the overlap, not the corpus.
        """
        return self.con.execute(
            "SELECT s.id, a.objects, a.attributes, b.objects, b.attributes FROM parses a "
            "CROSS JOIN parses b ON b.caption_hash = a.caption_hash AND b.parser_id = ? "
            "AND b.status = 'ok' "
            "CROSS JOIN samples s ON s.caption_hash = a.caption_hash "
            "WHERE a.parser_id = ? AND a.status = 'ok' "
            "AND (a.objects != b.objects OR a.attributes != b.attributes)",
            (large, small),
        )

    def samples_with_tag(self, tag: str, parser_ids: Sequence[int]) -> Iterator[int]:
        """Samples whose parse (by one of `parser_ids`) has `tag`, or that a reviewer gave it."""
        needle = json.dumps(tag, ensure_ascii=False)
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.con.execute(
            "SELECT s.id FROM parses p JOIN samples s ON s.caption_hash = p.caption_hash "
            f"WHERE p.status = 'ok' AND p.parser_id IN ({id_list(parser_ids)}) "
            "AND (p.objects LIKE ? ESCAPE '\\' OR p.attributes LIKE ? ESCAPE '\\') "
            "UNION SELECT sample_id FROM verdicts WHERE tag = ? AND verdict = 'add'",
            (pattern, pattern, tag),
        )
        return (r[0] for r in rows)

    def parses_of_samples(
        self, sample_ids: Sequence[int], parser_ids: Sequence[int]
    ) -> Iterator[tuple[int, int, str, str]]:
        """(sample id, parser id, objects, attributes) of the successful parses of a few samples.

        CROSS JOIN keeps SQLite from scanning all parses of a parser: the reviewed samples are few.
        """
        if not parser_ids:
            return
        for chunk in chunks(list(sample_ids)):
            yield from self.con.execute(
                "SELECT s.id, p.parser_id, p.objects, p.attributes FROM samples s "
                "CROSS JOIN parses p ON p.caption_hash = s.caption_hash AND p.status = 'ok' "
                f"AND p.parser_id IN ({id_list(parser_ids)}) "
                f"WHERE s.id IN ({marks(len(chunk))})",
                chunk,
            )
