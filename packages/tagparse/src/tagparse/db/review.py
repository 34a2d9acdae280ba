"""Read queries behind the review orders and the per-parser scores.

They join only what a review needs: pairs of parsers starting from the smaller one, the few
reviewed samples, one tag's samples. SQLite keeps only rows whose stored tag lists differ as
text; callers compare the decoded lists as sets. `CrossJoin` fixes the join order where the
planner would otherwise scan all parses of a parser.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence

from sqlalchemy import bindparam, func, select, union

from tagparse.db.connection import chunks
from tagparse.db.schema import parses, samples, verdicts
from tagparse.db.sql import CrossJoin, Sql, SqlIn

_P = parses.c
_OK_COUNTS = SqlIn(
    lambda ids: (
        select(_P.parser_id, func.count())
        .where(_P.status == "ok", _P.parser_id.in_(ids))
        .group_by(_P.parser_id)
    )
)


def _differing():
    a, b = parses.alias("a"), parses.alias("b")
    on_b = (b.c.caption_hash == a.c.caption_hash) & (b.c.parser_id == bindparam("large"))
    on_b &= b.c.status == "ok"
    joined = CrossJoin(CrossJoin(a, b, on_b), samples, samples.c.caption_hash == a.c.caption_hash)
    differ = (a.c.objects != b.c.objects) | (a.c.attributes != b.c.attributes)
    return (
        select(samples.c.id, a.c.objects, a.c.attributes, b.c.objects, b.c.attributes)
        .select_from(joined)
        .where(a.c.parser_id == bindparam("small"), a.c.status == "ok", differ)
    )


def _with_tag(ids):
    has = _P.objects.like(bindparam("p1"), escape="\\") | _P.attributes.like(
        bindparam("p2"), escape="\\"
    )
    parsed = (
        select(samples.c.id)
        .select_from(parses)
        .join(samples, samples.c.caption_hash == _P.caption_hash)
        .where(_P.status == "ok", _P.parser_id.in_(ids), has)
    )
    added = select(verdicts.c.sample_id).where(
        verdicts.c.tag == bindparam("tag"), verdicts.c.verdict == "add"
    )
    return union(parsed, added)


def _of_samples(sample_ids, parser_ids):
    on = (_P.caption_hash == samples.c.caption_hash) & (_P.status == "ok")
    return (
        select(samples.c.id, _P.parser_id, _P.objects, _P.attributes)
        .select_from(CrossJoin(samples, parses, on & _P.parser_id.in_(parser_ids)))
        .where(samples.c.id.in_(sample_ids))
    )


_DIFFERING = Sql(_differing)
_WITH_TAG = SqlIn(_with_tag)
_OF_SAMPLES = SqlIn(_of_samples, lists=2)


class ReviewReads:
    con: sqlite3.Connection

    def ok_parse_counts(self, parser_ids: Sequence[int]) -> dict[int, int]:
        """parser id -> number of successful parses, for the parsers that have any."""
        ids = [int(i) for i in parser_ids]
        return dict(self.con.execute(_OK_COUNTS.text(len(ids)), ids))

    def differing_parses(self, small: int, large: int) -> Iterator[tuple[int, str, str, str, str]]:
        """(sample id, objects and attributes by `small`, the same by `large`) where they differ.

        The join starts from `small`, the parser with fewer parses (often an LLM run on a
        subset), so the cost follows the overlap, not the corpus.
        """
        return self.con.execute(_DIFFERING.text, (large, small))

    def samples_with_tag(self, tag: str, parser_ids: Sequence[int]) -> Iterator[int]:
        """Samples whose parse (by one of `parser_ids`) has `tag`, or that a reviewer gave it."""
        needle = json.dumps(tag, ensure_ascii=False)
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        ids = [int(i) for i in parser_ids]
        rows = self.con.execute(_WITH_TAG.text(len(ids)), (*ids, pattern, pattern, tag))
        return (r[0] for r in rows)

    def parses_of_samples(
        self, sample_ids: Sequence[int], parser_ids: Sequence[int]
    ) -> Iterator[tuple[int, int, str, str]]:
        """(sample id, parser id, objects, attributes) of the successful parses of a few samples.

        CROSS JOIN keeps SQLite from scanning all parses of a parser: the reviewed samples are few.
        """
        if not parser_ids:
            return
        pids = [int(i) for i in parser_ids]
        for chunk in chunks(list(sample_ids)):
            yield from self.con.execute(_OF_SAMPLES.text(len(chunk), len(pids)), (*pids, *chunk))
