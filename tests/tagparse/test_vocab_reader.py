"""Vocabulary building (top-K, min count, review verdicts) and the trainer-facing reader."""

import time

import numpy as np
import pytest
from tagparse.db import TagsDB, caption_hash
from tagparse.errors import TagparseError
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.reader import load_labels
from tagparse.vocab import build_vocab

SAMPLES = {  # key: (caption, objects, attributes)
    "k1": ("a red car and a dog", ["car", "dog"], ["red"]),
    "k2": ("a dog on grass", ["dog", "grass"], []),
    "k3": ("a red bus", ["bus"], ["red"]),
    "k4": ("a dog on grass", ["dog", "grass"], []),  # same caption as k2: shares its parse
    "k5": ("a shiny kettle", ["kettle"], ["shiny"]),
}


@pytest.fixture
def db(tmp_path):
    db = TagsDB.open(tmp_path / "tags.db", create=True)
    db.add_samples([(k, c) for k, (c, _, _) in SAMPLES.items()])
    pid = db.register_parser(ParserSpec(backend="hand", normalizer_version="1"))
    db.write_parses(pid, [(caption_hash(c), ParseResult(o, a)) for c, o, a in SAMPLES.values()])
    return db


def _add_verdict(db, key, tag, kind, verdict):
    with db.transaction() as raw:
        sid = raw.execute("SELECT id FROM samples WHERE key=?", (key,)).fetchone()[0]
        raw.execute(
            "INSERT INTO verdicts(sample_id, parser_id, tag, kind, verdict, created_at) "
            "VALUES (?, NULL, ?, ?, ?, ?)",
            (sid, tag, kind, verdict, time.time()),
        )


def test_top_k_by_sample_frequency_then_name(db):
    summary = build_vocab(db, n_objects=3, n_attributes=5, progress=False)
    labels = load_labels(db.path)
    assert labels.vocab["object"] == [
        "dog",
        "grass",
        "bus",
    ]  # dog 3, grass 2, bus/car/kettle 1 -> bus
    assert labels.vocab["attribute"] == ["red", "shiny"]
    assert labels.counts["object"].tolist() == [3, 2, 1]
    assert summary.labelled == 5 and labels.fingerprint == summary.fingerprint


def test_labels_are_csr_rows_aligned_with_keys(db):
    build_vocab(db, 10, 10, progress=False)
    labels = load_labels(db.path)
    vocab = labels.vocab
    for i, key in enumerate(labels.keys):
        _, objects, attributes = SAMPLES[key]
        assert sorted(vocab["object"][j] for j in labels.labels["object"].row(i)) == sorted(objects)
        assert sorted(vocab["attribute"][j] for j in labels.labels["attribute"].row(i)) == sorted(
            attributes
        )
    multi_hot = labels.labels["object"].dense([0, 1], len(vocab["object"]))
    assert multi_hot.dtype == np.float32 and multi_hot.sum() == len(SAMPLES["k1"][1]) + len(
        SAMPLES["k2"][1]
    )


def test_min_count_drops_rare_tags(db):
    build_vocab(db, 10, 10, min_count=2, progress=False)
    labels = load_labels(db.path)
    assert labels.vocab["object"] == ["dog", "grass"] and labels.vocab["attribute"] == ["red"]
    k5 = labels.key_index()["k5"]
    assert labels.labels["object"].row(k5).size == 0


def test_review_verdicts_change_labels_and_fingerprint(db):
    before = build_vocab(db, 10, 10, progress=False).fingerprint
    _add_verdict(db, "k1", "dog", "object", "reject")
    _add_verdict(db, "k3", "wheel", "object", "add")
    _add_verdict(db, "k3", "red", "attribute", "reject")
    _add_verdict(db, "k3", "red", "attribute", "accept")  # the latest verdict wins
    after = build_vocab(db, 10, 10, progress=False).fingerprint
    labels = load_labels(db.path)
    idx = labels.key_index()

    def tags(key, kind):
        return {labels.vocab[kind][j] for j in labels.labels[kind].row(idx[key])}

    assert tags("k1", "object") == {"car"}
    assert tags("k3", "object") == {"bus", "wheel"} and tags("k3", "attribute") == {"red"}
    assert before != after


def test_reader_refuses_a_file_without_vocabulary(db):
    with pytest.raises(TagparseError, match="no vocabulary yet; run `tagparse vocab"):
        load_labels(db.path)


def test_vocab_needs_successful_parses(tmp_path):
    db = TagsDB.open(tmp_path / "t.db", create=True)
    db.add_samples([("k", "x")])
    pid = db.register_parser(ParserSpec(backend="hand", normalizer_version="1"))
    db.write_parses(pid, [(caption_hash("x"), ParseResult.failure("boom"))])
    with pytest.raises(TagparseError, match="no successful parses"):
        build_vocab(db, 10, 10, progress=False)
