"""Drive the real review app with keys and clicks against a tags.db on disk; check the rows."""

from __future__ import annotations

import sqlite3

import pytest
from tagparse.review.app import ImagePanel, ReviewApp
from tagparse.review.images import ImageSource
from tagparse.review.session import ReviewSession

pytestmark = pytest.mark.anyio


def verdict_rows(db) -> list[tuple[str, str, str, str]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT s.key, v.kind, v.tag, v.verdict FROM verdicts v "
            "JOIN samples s ON s.id = v.sample_id ORDER BY v.id"
        ).fetchall()
    finally:
        con.close()


async def test_accept_reject_add_undo_and_accept_all(tags_db):
    # --filter frisbee leaves img001 only: chips dog, frisbee, park (objects), brown, red (attrs)
    app = ReviewApp(ReviewSession(tags_db, tag_filter="frisbee"))
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.session.current.key == "img001"
        await pilot.press("r")
        assert verdict_rows(tags_db) == [("img001", "object", "dog", "reject")]
        await pilot.press("right", "a")
        assert verdict_rows(tags_db)[-1] == ("img001", "object", "frisbee", "accept")
        await pilot.press("space")  # toggles the accepted frisbee to rejected
        assert verdict_rows(tags_db)[-1] == ("img001", "object", "frisbee", "reject")
        await pilot.press("plus", *"leash", "enter")
        assert verdict_rows(tags_db)[-1] == ("img001", "object", "leash", "add")
        assert ("object", "leash") in app.session.current.added_tags()
        await pilot.press("u")
        assert ("img001", "object", "leash", "add") not in verdict_rows(tags_db)
        await pilot.press("A")  # accepts the still-unjudged park, brown, red
        rows = verdict_rows(tags_db)
        assert rows[-3:] == [
            ("img001", "object", "park", "accept"),
            ("img001", "attribute", "brown", "accept"),
            ("img001", "attribute", "red", "accept"),
        ]
        await pilot.press("u")  # one undo removes the whole accept-all
        assert verdict_rows(tags_db) == rows[:-3]
        assert "undid" in app.message


async def test_click_on_a_chip_toggles_it(tags_db):
    app = ReviewApp(ReviewSession(tags_db, tag_filter="frisbee"))
    async with app.run_test(size=(120, 40)) as pilot:
        column = app.query_one(f"#parser-{min(app.session.parsers)}")
        # border + padding, then the "objects: " label: the first chip starts at x=11 on line 2
        await pilot.click(column, offset=(13, 2))
        assert verdict_rows(tags_db) == [("img001", "object", "dog", "reject")]
        await pilot.click(column, offset=(13, 2))
        assert verdict_rows(tags_db)[-1] == ("img001", "object", "dog", "accept")


async def test_resume_at_first_unreviewed_of_the_same_order(tags_db):
    app = ReviewApp(ReviewSession(tags_db, seed=11))
    async with app.run_test(size=(80, 24)) as pilot:
        order = app.session.order.tolist()
        await pilot.press("plus", *"kite", "enter")  # works on any sample, tagged or not
        await pilot.press("s", "s", "plus", *"boat", "enter")  # third sample reviewed too
        await pilot.press("q")
    reviewed = {key for key, *_ in verdict_rows(tags_db)}
    con = sqlite3.connect(tags_db)
    keys = [con.execute("SELECT key FROM samples WHERE id=?", (i,)).fetchone()[0] for i in order]
    con.close()
    assert reviewed == {keys[0], keys[2]}

    again = ReviewApp(ReviewSession(tags_db, seed=11))
    async with again.run_test(size=(80, 24)) as pilot:
        assert again.session.order.tolist() == order
        assert again.session.current.key == keys[1]
        await pilot.press("n")  # the next unreviewed skips the reviewed third sample
        assert again.session.current.key == keys[3]


async def test_filter_and_unknown_tag_message(tags_db):
    app = ReviewApp(ReviewSession(tags_db))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"sofa", "enter")
        assert app.session.tag_filter == "sofa"
        assert {app.session.current.key} <= {"img003", "img007"} and len(app.session.order) == 2
        await pilot.press("slash", *"zebra", "enter")
        assert app.session.tag_filter == "sofa" and "no sample has the tag 'zebra'" in app.message
        await pilot.press("slash", "enter")
        assert app.session.tag_filter is None and len(app.session.order) == 8


async def test_edge_samples_do_not_crash(tags_db, image_dir, settle):
    """No tags (img004), a 2,000-char caption with a failed LLM parse (img005), bad and missing
    images."""
    app = ReviewApp(ReviewSession(tags_db), ImageSource(str(image_dir)))
    shown = {}
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("img004", "img005", "img002", "img003"):
            app.session.goto(
                app.session.position_of(
                    app.session.reader.con.execute(
                        "SELECT id FROM samples WHERE key=?", (key,)
                    ).fetchone()[0]
                )
            )
            app.refresh_view()
            await settle(pilot)
            shown[key] = str(app.query_one(ImagePanel).content)
            await pilot.press("right", "r", "A")
        assert ("img005", "object", "coat", "reject") in verdict_rows(tags_db)
        assert not any(k == "img004" for k, *_ in verdict_rows(tags_db))
    assert "corrupt image img002.jpg" in shown["img002"]
    assert "no image for key 'img003'" in shown["img003"]
