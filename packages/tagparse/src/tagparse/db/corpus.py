"""Read queries on samples, parsers and parses (the corpus and its cached parses).

Tag lists come back as the stored JSON text: callers decode only the rows they keep, and the
vocabulary build hands both lists of a row to the JSON scanner in one string.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from sqlalchemy import bindparam, func, literal, select

from tagparse.db.connection import chunks
from tagparse.db.schema import parsers, parses, samples
from tagparse.db.sql import Sql, SqlIn

ParserRow = tuple[int, str, str, str]  # (id, fingerprint, backend, model)

_S, _P = samples.c, parses.c
_PARSER = bindparam("parser_id")


def _ok_parses_of_parser():
    return (_P.caption_hash == _S.caption_hash) & (_P.parser_id == _PARSER) & (_P.status == "ok")


_COUNT = Sql(lambda: select(func.count()).select_from(samples))
_COUNT_CAPTIONS = Sql(lambda: select(func.count(_S.caption_hash.distinct())))
_ID_RANGE = Sql(lambda: select(func.min(_S.id), func.max(_S.id), func.count()))
_IDS = Sql(lambda: select(_S.id).order_by(_S.id))
_KEY_OF_CAPTION = Sql(
    lambda: select(_S.key).where(_S.caption_hash == bindparam("h")).order_by(_S.id).limit(1)
)
_SAMPLE = Sql(lambda: select(_S.key, _S.caption, _S.caption_hash).where(_S.id == bindparam("id")))
_PARSER_ROWS = Sql(
    lambda: select(
        parsers.c.id, parsers.c.fingerprint, parsers.c.backend, parsers.c.model
    ).order_by(parsers.c.id)
)
_COUNT_OK = Sql(lambda: select(func.count()).where(_P.parser_id == _PARSER, _P.status == "ok"))
_STATUS_COUNTS = Sql(
    lambda: select(_P.status, func.count()).where(_P.parser_id == _PARSER).group_by(_P.status)
)
_OF_CAPTION = Sql(
    lambda: (
        select(_P.parser_id, _P.status, _P.error, _P.objects, _P.attributes)
        .where(_P.caption_hash == bindparam("h"))
        .order_by(_P.parser_id)
    )
)
_OK_AMONG = SqlIn(
    lambda hashes: select(_P.caption_hash, _P.objects, _P.attributes).where(
        _P.parser_id == _PARSER, _P.status == "ok", _P.caption_hash.in_(hashes)
    )
)
_TAG_LISTS = Sql(  # the vocab scan over every sample (bench_scale.py): one JSON text per row
    lambda: (
        select(_S.id, literal("[") + _P.objects + "," + _P.attributes + "]")
        .join(parses, _ok_parses_of_parser())
        .order_by(_S.id)
    )
)


def _ok_with_counts():
    n = select(_S.caption_hash, func.count().label("n")).group_by(_S.caption_hash).subquery("n")
    return (
        select(_P.objects, _P.attributes, _P.caption_hash, n.c.n)
        .join(n, n.c.caption_hash == _P.caption_hash)
        .where(_P.parser_id == _PARSER, _P.status == "ok")
    )


_OK_WITH_COUNTS = Sql(_ok_with_counts)
_WITH_PARSE = Sql(
    lambda: (
        select(_S.key, _S.caption, _P.status, _P.objects, _P.attributes, _P.error, _S.caption_hash)
        .outerjoin(parses, (_P.caption_hash == _S.caption_hash) & (_P.parser_id == _PARSER))
        .order_by(_S.id)
    )
)


class CorpusReads:
    con: sqlite3.Connection

    # -- samples ---------------------------------------------------------------------------------
    def count_samples(self) -> int:
        return self.con.execute(_COUNT.text).fetchone()[0]

    def count_distinct_captions(self) -> int:
        return self.con.execute(_COUNT_CAPTIONS.text).fetchone()[0]

    def sample_id_range(self) -> tuple[int | None, int | None, int]:
        """(smallest id, largest id, number of samples)."""
        return self.con.execute(_ID_RANGE.text).fetchone()

    def ordered_sample_ids(self) -> Iterator[int]:
        return (r[0] for r in self.con.execute(_IDS.text))

    def sample(self, sample_id: int) -> tuple[str, str, str]:
        """(key, caption, caption hash) of one sample."""
        return self.con.execute(_SAMPLE.text, (sample_id,)).fetchone()

    # -- parsers ---------------------------------------------------------------------------------
    def parser_rows(self) -> list[ParserRow]:
        return self.con.execute(_PARSER_ROWS.text).fetchall()

    # -- parses ----------------------------------------------------------------------------------
    def count_ok_parses(self, parser_id: int) -> int:
        return self.con.execute(_COUNT_OK.text, (parser_id,)).fetchone()[0]

    def parse_status_counts(self, parser_id: int) -> dict[str, int]:
        return dict(self.con.execute(_STATUS_COUNTS.text, (parser_id,)).fetchall())

    def parses_of_caption(self, caption_hash: str) -> list[tuple[int, str, str, str, str]]:
        """(parser id, status, error, objects, attributes) of every parse of one caption."""
        return self.con.execute(_OF_CAPTION.text, (caption_hash,)).fetchall()

    def ok_parses_among(self, parser_id: int, hashes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """caption hash -> (objects, attributes) of this parser's successful parses of `hashes`."""
        found = {}
        for chunk in chunks(list(hashes)):
            rows = self.con.execute(_OK_AMONG.text(len(chunk)), [parser_id, *chunk])
            found.update((h, (objs, attrs)) for h, objs, attrs in rows)
        return found

    def first_key_of_caption(self, caption_hash: str) -> str | None:
        """The key of the first sample with this caption (what an error about its parse names)."""
        row = self.con.execute(_KEY_OF_CAPTION.text, (caption_hash,)).fetchone()
        return row[0] if row else None

    def tag_lists_by_sample(self, parser_id: int) -> Iterator[tuple[int, str]]:
        """(sample id, `[objects, attributes]` as one JSON text) of parsed samples, by id."""
        return self.con.execute(_TAG_LISTS.text, (parser_id,))

    def ok_parses_with_sample_counts(self, parser_id: int) -> Iterator[tuple[str, str, str, int]]:
        """(objects, attributes, caption hash, samples with that caption) per successfully
        parsed caption."""
        return self.con.execute(_OK_WITH_COUNTS.text, (parser_id,))

    def samples_with_parse(
        self, parser_id: int
    ) -> Iterator[tuple[str, str, str | None, str | None, str | None, str | None, str]]:
        """(key, caption, status, objects, attributes, error, caption hash) of every sample, by
        id; the parse columns are None where this parser has not parsed the caption."""
        return self.con.execute(_WITH_PARSE.text, (parser_id,))
