"""Verdicts recorded after `tagparse vocab` reach the trainer's labels without a vocab rebuild."""

from __future__ import annotations

import numpy as np
from tagparse.db import TagsDB
from tagparse.db.verdicts import VerdictItem, VerdictStore
from tagparse.reader import load_labels
from tagparse.vocab import build_vocab


def _objects(labels, key):
    row = labels.key_index()[key]
    return sorted(labels.vocab["object"][i] for i in labels.labels["object"].row(row))


def test_post_vocab_verdicts_change_labels(tags_db):
    before = load_labels(tags_db)
    assert _objects(before, "img001") == ["dog", "frisbee", "park"]
    store = VerdictStore(tags_db)
    ids = dict(store.con.execute("SELECT key, id FROM samples"))
    store.record(ids["img001"], [VerdictItem("object", "park", "reject")])
    store.record(
        ids["img001"],
        [
            VerdictItem("object", "cat", "add"),  # in the vocabulary
            VerdictItem("object", "zebra", "add"),
        ],
    )  # not in it: ignored
    store.record(ids["img006"], [VerdictItem("attribute", "red", "reject")])
    store.close()

    after = load_labels(tags_db)
    assert after.fingerprint == before.fingerprint
    assert _objects(after, "img001") == ["cat", "dog", "frisbee"]
    row6 = after.key_index()["img006"]
    assert after.labels["attribute"].row(row6).tolist() == []
    for key in ("img002", "img003", "img008"):  # untouched samples keep their labels
        r = before.key_index()[key]
        for kind in ("object", "attribute"):
            assert np.array_equal(after.labels[kind].row(r), before.labels[kind].row(r))

    # Rebuilding the vocabulary applies the same verdicts itself; added tags count towards it, so
    # "zebra" (min count 1) now enters the vocabulary and the label too.
    build_vocab(TagsDB.open(tags_db), 100, 100, parser="spacy", progress=False)
    rebuilt = load_labels(tags_db)
    assert _objects(rebuilt, "img001") == ["cat", "dog", "frisbee", "zebra"]


def test_undo_after_vocab_restores_the_label(tags_db):
    store = VerdictStore(tags_db)
    sid = store.con.execute("SELECT id FROM samples WHERE key='img001'").fetchone()[0]
    store.record(sid, [VerdictItem("object", "dog", "reject")])
    assert "dog" not in _objects(load_labels(tags_db), "img001")
    assert store.undo() == sid
    store.close()
    assert "dog" in _objects(load_labels(tags_db), "img001")
