"""`Reader`: every read query of a tags.db, over one read-only sqlite3 connection.

The queries are grouped by table family in `corpus`, `labels`, `verdicts` and `review`; a reader
keeps its connection open, so the review TUI pays for no reconnect per keystroke.
"""

from __future__ import annotations

import sqlite3
from typing import Self

from tagparse.db.corpus import CorpusReads
from tagparse.db.labels import LabelReads
from tagparse.db.review import ReviewReads
from tagparse.db.verdicts import VerdictReads


class Reader(CorpusReads, LabelReads, VerdictReads, ReviewReads):
    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
