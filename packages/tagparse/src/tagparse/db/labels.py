"""Read queries on the active vocabulary and the per-sample label blobs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from sqlalchemy import ColumnElement, bindparam, func, select

from tagparse.db.schema import labels, samples, vocab
from tagparse.db.sql import Sql

_VOCAB_ROWS = Sql(
    lambda: select(vocab.c.kind, vocab.c.tag, vocab.c.count).order_by(vocab.c.kind, vocab.c.idx)
)
_VOCAB_SIZES = Sql(lambda: select(vocab.c.kind, func.count()).group_by(vocab.c.kind))
_VOCAB_COUNTS = Sql(
    lambda: select(vocab.c.count).where(vocab.c.kind == bindparam("kind")).order_by(vocab.c.idx)
)
_LABEL_ROWS = Sql(lambda: select(labels.c.sample_id, labels.c.objects, labels.c.attributes))
_KEYED_LABEL_ROWS = Sql(  # the trainer's reader, streamed into its arrays (bench_scale.py)
    lambda: (
        select(labels.c.sample_id, samples.c.key, labels.c.objects, labels.c.attributes)
        .join(samples, samples.c.id == labels.c.sample_id)
        .order_by(labels.c.sample_id)
    )
)


def _bad_blob(column: ColumnElement) -> ColumnElement:
    """True where a label column is not a whole number of int32 indices (or not a blob)."""
    return (func.typeof(column) != "blob") | (func.length(column) % 4 != 0)


def _bad_label_row() -> ColumnElement:
    return _bad_blob(labels.c.objects) | _bad_blob(labels.c.attributes)


_LABEL_SIZES = Sql(  # one pass: the arrays' sizes, and whether any row is damaged
    lambda: select(
        func.count(),
        func.coalesce(func.sum(func.length(labels.c.objects)), 0),
        func.coalesce(func.sum(func.length(labels.c.attributes)), 0),
        func.coalesce(func.sum(_bad_label_row()), 0),
    )
)
_FIRST_BAD_LABEL_ROW = Sql(
    lambda: (
        select(
            labels.c.sample_id,
            samples.c.key,
            func.typeof(labels.c.objects),
            func.length(labels.c.objects),
            func.typeof(labels.c.attributes),
            func.length(labels.c.attributes),
        )
        .join(samples, samples.c.id == labels.c.sample_id)
        .where(_bad_label_row())
        .order_by(labels.c.sample_id)
        .limit(1)
    )
)


class LabelReads:
    con: sqlite3.Connection

    def vocab_rows(self) -> list[tuple[str, str, int]]:
        """(kind, tag, count) of the whole vocabulary, by kind then index."""
        return self.con.execute(_VOCAB_ROWS.text).fetchall()

    def vocab_sizes(self) -> dict[str, int]:
        return dict(self.con.execute(_VOCAB_SIZES.text).fetchall())

    def vocab_counts(self, kind: str) -> list[int]:
        """Corpus count of each tag of one kind, by index."""
        return [c for (c,) in self.con.execute(_VOCAB_COUNTS.text, (kind,))]

    def label_rows(self) -> list[tuple[int, bytes, bytes]]:
        """(sample id, object blob, attribute blob) of every labelled sample."""
        return self.con.execute(_LABEL_ROWS.text).fetchall()

    def keyed_label_rows(self) -> Iterator[tuple[int, str, bytes, bytes]]:
        """(sample id, key, object blob, attribute blob) of every labelled sample, by id, as a
        cursor (`fetchmany` it: 12M rows fetched at once would take several times their arrays)."""
        return self.con.execute(_KEYED_LABEL_ROWS.text)

    def label_sizes(self) -> tuple[int, int, int, int]:
        """(label rows, object blob bytes, attribute blob bytes, damaged rows) in one scan."""
        return self.con.execute(_LABEL_SIZES.text).fetchone()

    def first_damaged_label_row(self) -> tuple[int, str, str, int, str, int] | None:
        """(sample id, key, typeof + length of objects, of attributes) of the first label row
        whose blobs are not whole int32 lists; None when there is none."""
        return self.con.execute(_FIRST_BAD_LABEL_ROW.text).fetchone()
