"""Keystrokes never scan the big tables: every query they run is checked with EXPLAIN QUERY PLAN."""

from __future__ import annotations

import pytest
from review_fixtures import SAMPLES, make_tags_db
from tagparse.review.app import ReviewApp
from tagparse.review.session import ReviewSession

pytestmark = pytest.mark.anyio

# verdicts may be scanned: it grows with the reviewer's effort, not with the corpus.
BIG_TABLES = {
    "samples",
    "parses",
    "labels",
    "vocab",
    "s",
    "p",
    "l",
}  # with the aliases the queries use
# A "SEARCH" through this index still visits every parse of a parser.
WHOLE_PARSER_INDEX = "ix_parses_parser_status"


def full_passes(plan: list[str]) -> list[str]:
    return [
        d
        for d in plan
        if (d.split()[0] == "SCAN" and d.split()[1] in BIG_TABLES) or WHOLE_PARSER_INDEX in d
    ]


async def test_keystrokes_use_indexed_lookups_only(tmp_path):
    # 40 samples: with ~20 reviewed ones SQLite's planner would walk a whole parser's parses for the
    # running precision unless the query forces the join order.
    samples = dict(SAMPLES) | {
        f"extra{i:03d}": (f"A red bus number {i}.", (["bus"], ["red"]), (["bus"], []))
        for i in range(32)
    }
    db = make_tags_db(tmp_path / "tags.db", samples)
    app = ReviewApp(ReviewSession(db))
    statements: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"rs" * 24)
        for con in (app.session.reader.con, app.session.store.con):
            con.set_trace_callback(statements.append)
        await pilot.press("s", "r", "right", "a", "s", "A", "u", "k", "n", "space")
        for con in (app.session.reader.con, app.session.store.con):
            con.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "DELETE"))]
        assert len(selects) > 10
        for sql in selects:
            plan = [row[3] for row in app.session.reader.con.execute("EXPLAIN QUERY PLAN " + sql)]
            assert not full_passes(plan), (sql, plan)
