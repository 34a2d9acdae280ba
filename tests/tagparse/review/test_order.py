"""Review orders: reproducible from the seed, and each puts the right samples first."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from review_fixtures import make_tags_db
from tagparse.db import Reader
from tagparse.errors import TagparseError
from tagparse.review.order import build_order
from tagparse.review.samples import parser_labels


def _keys(db, order: str, seed: int = 0, reviewed=(), tag=None, parsers=None) -> list[str]:
    with Reader(sqlite3.connect(db)) as r:
        pids = list(parser_labels(r, parsers))
        ids = build_order(r, str(db), order, seed, pids, np.asarray(reviewed, dtype=np.int64), tag)
        return [r.sample(int(i))[0] for i in ids]


def test_random_order_is_reproducible_from_the_seed(tags_db):
    a, b, c = _keys(tags_db, "random", 3), _keys(tags_db, "random", 3), _keys(tags_db, "random", 4)
    assert a == b and sorted(a) == sorted(c) and a != c and len(a) == 8


def test_disagreement_first_most_disputed_first(tags_db):
    keys = _keys(tags_db, "disagreement", seed=1)
    # img002: football vs ball (2 tags differ); img001 park, img007 red (1 each); img003 lists the
    # same tags in another order, which is not a disagreement; img005's LLM parse failed.
    assert keys[0] == "img002"
    assert set(keys[1:3]) == {"img001", "img007"}
    assert keys[3:] == [
        k for k in _keys(tags_db, "random", seed=1) if k not in {"img001", "img002", "img007"}
    ]


def test_rare_order_puts_rare_tags_first(tags_db):
    keys = _keys(tags_db, "rare", seed=2)
    # Rarest tag per sample (spaCy vocabulary counts): img003 has only cat (2) and sofa (2); img004
    # has no tag at all; every other sample has some tag seen once. Ties keep the seeded order.
    assert keys[-2:] == ["img003", "img004"]
    assert keys[:6] == [
        k for k in _keys(tags_db, "random", seed=2) if k not in {"img003", "img004"}
    ]


def test_rare_order_needs_a_vocabulary(tmp_path):
    db = make_tags_db(tmp_path / "tags.db", vocab=False)
    with pytest.raises(TagparseError, match="tagparse vocab"):
        _keys(db, "rare")


def test_unreviewed_order_drops_reviewed_samples_keeping_the_rest_in_place(tags_db):
    con = sqlite3.connect(tags_db)
    ids = dict(con.execute("SELECT key, id FROM samples"))
    con.close()
    reviewed = [ids["img003"], ids["img006"]]
    keys = _keys(tags_db, "unreviewed", seed=5, reviewed=reviewed)
    assert keys == [k for k in _keys(tags_db, "random", seed=5) if k not in {"img003", "img006"}]


def test_tag_filter(tags_db):
    assert sorted(_keys(tags_db, "random", tag="sofa")) == ["img003", "img007"]
    assert _keys(tags_db, "random", tag="ball") == ["img002"]  # only the LLM found a ball
    assert _keys(tags_db, "random", tag="ball", parsers=[1]) == []  # not spaCy (parser 1)
    assert _keys(tags_db, "random", tag="50%_off") == []  # LIKE wildcards are escaped
