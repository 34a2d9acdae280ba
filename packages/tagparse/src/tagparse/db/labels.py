"""Read queries on the active vocabulary and the per-sample label blobs."""

from __future__ import annotations

import sqlite3


class LabelReads:
    con: sqlite3.Connection

    def vocab_rows(self) -> list[tuple[str, str, int]]:
        """(kind, tag, count) of the whole vocabulary, by kind then index."""
        return self.con.execute("SELECT kind, tag, count FROM vocab ORDER BY kind, idx").fetchall()

    def vocab_sizes(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT kind, COUNT(*) FROM vocab GROUP BY kind").fetchall())

    def vocab_counts(self, kind: str) -> list[int]:
        """Corpus count of each tag of one kind, by index."""
        return [
            c
            for (c,) in self.con.execute(
                "SELECT count FROM vocab WHERE kind=? ORDER BY idx", (kind,)
            )
        ]

    def label_rows(self) -> list[tuple[int, bytes, bytes]]:
        """(sample id, object blob, attribute blob) of every labelled sample."""
        return self.con.execute("SELECT sample_id, objects, attributes FROM labels").fetchall()

    def keyed_label_rows(self) -> list[tuple[int, str, bytes, bytes]]:
        """(sample id, key, object blob, attribute blob) of every labelled sample, by id."""
        return self.con.execute(
            "SELECT l.sample_id, s.key, l.objects, l.attributes FROM labels l "
            "JOIN samples s ON s.id = l.sample_id ORDER BY l.sample_id"
        ).fetchall()
