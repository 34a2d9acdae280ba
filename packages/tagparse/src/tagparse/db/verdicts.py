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

import numpy as np
from sqlalchemy import bindparam, delete, func, insert, select

from tagparse.db.connection import Store
from tagparse.db.schema import VERDICTS, samples, verdicts
from tagparse.db.sql import Sql, values_of

LatestVerdicts = dict[int, dict[tuple[str, str], str]]  # sample id -> (kind, tag) -> verdict

_V = verdicts.c
_COUNT = Sql(lambda: select(func.count()).select_from(verdicts))
_ALL = Sql(lambda: select(_V.sample_id, _V.kind, _V.tag, _V.verdict).order_by(_V.id))
_SINCE = Sql(
    lambda: (
        select(_V.sample_id, _V.kind, _V.tag, _V.verdict)
        .where(_V.created_at > bindparam("t"))
        .order_by(_V.id)
    )
)
_KEYED = Sql(
    lambda: (
        select(
            _V.id,
            samples.c.key,
            _V.sample_id,
            _V.parser_id,
            _V.kind,
            _V.tag,
            _V.verdict,
            _V.created_at,
        )
        .join(samples, samples.c.id == _V.sample_id)
        .order_by(_V.id)
    )
)
_ADD = Sql(
    lambda: insert(verdicts).values(
        values_of(("sample_id", "parser_id", "tag", "kind", "verdict", "created_at"))
    )
)
_LATEST_ACTION = Sql(lambda: select(_V.sample_id, _V.created_at).order_by(_V.id.desc()).limit(1))
_DELETE_ACTION = Sql(
    lambda: delete(verdicts).where(
        _V.sample_id == bindparam("sid"), _V.created_at == bindparam("t")
    )
)
_OF_SAMPLE = Sql(
    lambda: (
        select(_V.kind, _V.tag, _V.verdict).where(_V.sample_id == bindparam("sid")).order_by(_V.id)
    )
)
_IS_REVIEWED = Sql(lambda: select(1).where(_V.sample_id == bindparam("sid")).limit(1))
_REVIEWED_IDS = Sql(lambda: select(_V.sample_id).distinct().order_by(_V.sample_id))


class VerdictReads:
    con: sqlite3.Connection

    def count_verdicts(self) -> int:
        return self.con.execute(_COUNT.text).fetchone()[0]

    def latest_verdicts(self) -> LatestVerdicts:
        """Latest verdict per (sample, kind, tag); later rows override earlier ones."""
        out: LatestVerdicts = {}
        for sid, kind, tag, verdict in self.con.execute(_ALL.text):
            out.setdefault(sid, {})[(kind, tag)] = verdict
        return out

    def verdicts_since(self, created_after: float) -> list[tuple[int, str, str, str]]:
        """(sample id, kind, tag, verdict) recorded after a time, oldest first."""
        return self.con.execute(_SINCE.text, (created_after,)).fetchall()

    def keyed_verdict_rows(self) -> list[tuple[int, str, int, int | None, str, str, str, float]]:
        """(id, key, sample id, parser id, kind, tag, verdict, created_at), oldest first."""
        return self.con.execute(_KEYED.text).fetchall()


@dataclass(frozen=True)
class VerdictItem:
    kind: str  # "object" | "attribute"
    tag: str
    verdict: str  # "accept" | "reject" | "add"
    parser_id: int | None = None  # the parser whose tag was judged; None for an added tag


class VerdictStore(Store):
    """Read and write the `verdicts` table of one tags.db through one connection."""

    def record(self, sample_id: int, items: Sequence[VerdictItem]) -> None:
        """Write one reviewer action (one or several verdicts) in one transaction."""
        for item in items:
            if item.verdict not in VERDICTS:
                raise ValueError(f"verdict must be one of {VERDICTS}, not {item.verdict!r}")
        now = time.time()
        with self.transaction() as tx:
            tx.executemany(
                _ADD.text, [(sample_id, i.parser_id, i.tag, i.kind, i.verdict, now) for i in items]
            )

    def undo(self) -> int | None:
        """Delete the latest action's rows; return its sample id (None when nothing is left)."""
        with self.transaction() as tx:
            row = tx.execute(_LATEST_ACTION.text).fetchone()
            if row is None:
                return None
            tx.execute(_DELETE_ACTION.text, row)
        return row[0]

    def latest(self, sample_id: int) -> dict[tuple[str, str], str]:
        """(kind, tag) -> the latest verdict on that tag of this sample."""
        return {(k, t): v for k, t, v in self.execute(_OF_SAMPLE.text, (sample_id,))}

    def is_reviewed(self, sample_id: int) -> bool:
        return self.execute(_IS_REVIEWED.text, (sample_id,)).fetchone() is not None

    def reviewed_ids(self) -> np.ndarray:
        """Ids of samples with at least one verdict, sorted."""
        rows = self.execute(_REVIEWED_IDS.text)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)
