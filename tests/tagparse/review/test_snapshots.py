"""Snapshot tests of the review screens at 80x24 and 120x40 (refresh: `--snapshot-update`)."""

from __future__ import annotations

import pytest
from tagparse.review.app import ReviewApp
from tagparse.review.images import ImageSource
from tagparse.review.session import ReviewSession

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, tags_db, image_dir, settle, size):
    app = ReviewApp(ReviewSession(tags_db, tag_filter="frisbee"), ImageSource(str(image_dir)))
    assert snap_compare(app, press=["right", "r", "right"], terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_disagreement_view(snap_compare, tags_db, image_dir, settle, size):
    app = ReviewApp(ReviewSession(tags_db, order="disagreement"), ImageSource(str(image_dir)))
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, tags_db, size):
    app = ReviewApp(ReviewSession(tags_db))
    assert snap_compare(app, press=["question_mark"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_empty_database_screen(snap_compare, empty_db, size):
    assert snap_compare(ReviewApp(ReviewSession(empty_db)), terminal_size=size)
