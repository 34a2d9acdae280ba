"""Reproducible review orders over sample ids.

An order is a numpy array of sample ids computed once when a review opens (SQL + numpy, never a
per-keystroke scan). Every order starts from the same seeded permutation of all samples, so the
same db, order, filter and seed give the same sequence, and a restarted review resumes where the
first unreviewed sample of that sequence is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from tagparse.db import Reader
from tagparse.errors import TagparseError

ORDERS = ("random", "disagreement", "rare", "unreviewed")


def all_sample_ids(r: Reader) -> np.ndarray:
    """Every sample id; ids written by one bulk import are contiguous, which skips the scan."""
    lo, hi, n = r.sample_id_range()
    if not n:
        return np.empty(0, dtype=np.int64)
    if hi - lo + 1 == n:
        return np.arange(lo, hi + 1, dtype=np.int64)
    return np.fromiter(r.ordered_sample_ids(), dtype=np.int64, count=n)


def disagreement_scores(r: Reader, parser_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, number of tags the parsers disagree on) for samples parsed by several parsers.

    Each pair of parsers is joined starting from the one with fewer parses (often an LLM run on a
    subset), so the cost follows the overlap, not the corpus. SQLite keeps only pairs whose stored
    tag lists differ as text; Python compares those as sets, so the same tags in another order do
    not count as a disagreement.
    """
    counts = r.ok_parse_counts(parser_ids)
    parsed = sorted(counts, key=lambda p: (counts[p], p))
    scores: dict[int, int] = {}
    for i, small in enumerate(parsed):
        for large in parsed[i + 1 :]:
            for sid, ao, aa, bo, ba in r.differing_parses(small, large):
                diff = len(set(json.loads(ao)) ^ set(json.loads(bo))) + len(
                    set(json.loads(aa)) ^ set(json.loads(ba))
                )
                if diff:
                    scores[sid] = scores.get(sid, 0) + diff
    ids = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
    return ids, np.fromiter(scores.values(), dtype=np.int64, count=len(scores))


def rarest_tag_counts(r: Reader, db_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, corpus count of each sample's rarest labelled tag) in the active vocabulary."""
    vocab = {k: np.asarray(r.vocab_counts(k), dtype=np.int64) for k in ("object", "attribute")}
    if not len(vocab["object"]) and not len(vocab["attribute"]):
        raise TagparseError(
            f"{db_path}: --order rare needs a vocabulary; run `tagparse vocab --db {db_path}` first"
        )
    rows = r.label_rows()
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    sample_ids, *columns = zip(*rows)  # transposed in C; per-row Python loops dominate otherwise
    ids = np.asarray(sample_ids, dtype=np.int64)
    rarest = np.full(len(rows), np.iinfo(np.int64).max, dtype=np.int64)
    for blobs, kind in zip(columns, ("object", "attribute")):
        lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) // 4
        idx = np.frombuffer(b"".join(blobs), dtype="<i4")
        has = lengths > 0
        if not has.any():
            continue
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[has]
        per_sample = np.minimum.reduceat(vocab[kind][idx], starts)
        rarest[has] = np.minimum(rarest[has], per_sample)
    return ids, rarest


def build_order(
    r: Reader,
    db_path: str,
    order: str,
    seed: int,
    parser_ids: Sequence[int],
    reviewed: np.ndarray,
    tag_filter: str | None = None,
) -> np.ndarray:
    """The sample ids to review, in order; see the module docstring for what stays reproducible."""
    if order not in ORDERS:
        raise TagparseError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")
    ids = all_sample_ids(r)
    ids = ids[np.random.default_rng(seed).permutation(len(ids))]
    if tag_filter:
        tagged = np.fromiter(r.samples_with_tag(tag_filter, parser_ids), dtype=np.int64)
        ids = ids[np.isin(ids, tagged)]
    if order == "unreviewed":
        ids = ids[~np.isin(ids, reviewed)]
    elif order == "disagreement":
        ids = _sort_by(ids, *disagreement_scores(r, parser_ids), descending=True, missing=0)
    elif order == "rare":
        ids = _sort_by(
            ids, *rarest_tag_counts(r, db_path), descending=False, missing=np.iinfo(np.int64).max
        )
    return ids


def _sort_by(
    ids: np.ndarray, keyed_ids: np.ndarray, scores: np.ndarray, *, descending: bool, missing: int
) -> np.ndarray:
    """Stable sort of `ids` by a score known for some of them (the seeded order breaks ties)."""
    order = np.argsort(keyed_ids, kind="stable")
    keyed_ids, scores = keyed_ids[order], scores[order]
    pos = np.searchsorted(keyed_ids, ids)
    pos_ok = np.minimum(pos, max(len(keyed_ids) - 1, 0))
    found = (
        (pos < len(keyed_ids)) & (keyed_ids[pos_ok] == ids)
        if len(keyed_ids)
        else np.zeros(len(ids), bool)
    )
    score = np.full(len(ids), missing, dtype=np.int64)
    score[found] = scores[pos_ok[found]]
    return ids[np.argsort(-score if descending else score, kind="stable")]
