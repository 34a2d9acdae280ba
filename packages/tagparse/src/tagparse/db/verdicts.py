"""Review verdicts: reads for reports and labels, and the reviewer's writes.

Every reviewer action is its own committed transaction, so quitting, a crash or a kill loses at
most the keystroke in flight. The latest verdict per (sample, kind, tag) wins; undo deletes the
rows of the latest action (one verdict, or all the verdicts of one accept-all), which exposes the
verdict it had overridden.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagparse.db.connection import connect, immediate
from tagparse.db.schema import VERDICTS

LatestVerdicts = dict[int, dict[tuple[str, str], str]]  # sample id -> (kind, tag) -> verdict


class VerdictReads:
    con: sqlite3.Connection

    def count_verdicts(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]

    def latest_verdicts(self) -> LatestVerdicts:
        """Latest verdict per (sample, kind, tag); later rows override earlier ones."""
        out: LatestVerdicts = {}
        for sid, kind, tag, verdict in self.con.execute(
            "SELECT sample_id, kind, tag, verdict FROM verdicts ORDER BY id"
        ):
            out.setdefault(sid, {})[(kind, tag)] = verdict
        return out

    def verdicts_since(self, created_after: float) -> list[tuple[int, str, str, str]]:
        """(sample id, kind, tag, verdict) recorded after a time, oldest first."""
        return self.con.execute(
            "SELECT sample_id, kind, tag, verdict FROM verdicts WHERE created_at > ? ORDER BY id",
            (created_after,),
        ).fetchall()

    def keyed_verdict_rows(self) -> list[tuple[int, str, int, int | None, str, str, str, float]]:
        """(id, key, sample id, parser id, kind, tag, verdict, created_at), oldest first."""
        return self.con.execute(
            "SELECT v.id, s.key, v.sample_id, v.parser_id, v.kind, v.tag, v.verdict, v.created_at "
            "FROM verdicts v JOIN samples s ON s.id = v.sample_id ORDER BY v.id"
        ).fetchall()


@dataclass(frozen=True)
class VerdictItem:
    kind: str  # "object" | "attribute"
    tag: str
    verdict: str  # "accept" | "reject" | "add"
    parser_id: int | None = None  # the parser whose tag was judged; None for an added tag


class VerdictStore:
    """Read and write the `verdicts` table of one tags.db through a plain sqlite3 connection."""

    def __init__(self, path: str | Path):
        self.con = connect(path)

    def close(self) -> None:
        self.con.close()

    def record(self, sample_id: int, items: Sequence[VerdictItem]) -> None:
        """Write one reviewer action (one or several verdicts) in one transaction."""
        for item in items:
            if item.verdict not in VERDICTS:
                raise ValueError(f"verdict must be one of {VERDICTS}, not {item.verdict!r}")
        now = time.time()
        with immediate(self.con):
            self.con.executemany(
                "INSERT INTO verdicts(sample_id, parser_id, tag, kind, verdict, created_at) "
                "VALUES (?,?,?,?,?,?)",
                [(sample_id, i.parser_id, i.tag, i.kind, i.verdict, now) for i in items],
            )

    def undo(self) -> int | None:
        """Delete the latest action's rows; return its sample id (None when nothing is left)."""
        with immediate(self.con):
            row = self.con.execute(
                "SELECT sample_id, created_at FROM verdicts ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            self.con.execute("DELETE FROM verdicts WHERE sample_id=? AND created_at=?", row)
        return row[0]

    def latest(self, sample_id: int) -> dict[tuple[str, str], str]:
        """(kind, tag) -> the latest verdict on that tag of this sample."""
        return {
            (k, t): v
            for k, t, v in self.con.execute(
                "SELECT kind, tag, verdict FROM verdicts WHERE sample_id=? ORDER BY id",
                (sample_id,),
            )
        }

    def is_reviewed(self, sample_id: int) -> bool:
        return (
            self.con.execute(
                "SELECT 1 FROM verdicts WHERE sample_id=? LIMIT 1", (sample_id,)
            ).fetchone()
            is not None
        )

    def reviewed_ids(self) -> np.ndarray:
        """Ids of samples with at least one verdict, sorted."""
        return np.fromiter(
            (
                r[0]
                for r in self.con.execute(
                    "SELECT DISTINCT sample_id FROM verdicts ORDER BY sample_id"
                )
            ),
            dtype=np.int64,
        )
