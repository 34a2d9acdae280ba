"""Read queries on the active vocabulary and the per-sample label blobs."""

from __future__ import annotations

import sqlite3

from sqlalchemy import bindparam, func, select

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
_KEYED_LABEL_ROWS = Sql(  # the trainer's reader: 1M rows in one fetch (bench_scale.py)
    lambda: (
        select(labels.c.sample_id, samples.c.key, labels.c.objects, labels.c.attributes)
        .join(samples, samples.c.id == labels.c.sample_id)
        .order_by(labels.c.sample_id)
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

    def keyed_label_rows(self) -> list[tuple[int, str, bytes, bytes]]:
        """(sample id, key, object blob, attribute blob) of every labelled sample, by id."""
        return self.con.execute(_KEYED_LABEL_ROWS.text).fetchall()
