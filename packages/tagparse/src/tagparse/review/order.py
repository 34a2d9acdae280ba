"""Reproducible review orders over sample ids.

An order is a numpy array of sample ids computed once when a review opens (SQL + numpy, never a
per-keystroke scan). Every order starts from the same seeded permutation of all samples, so the
same db, order, filter and seed give the same sequence, and a restarted review resumes where the
first unreviewed sample of that sequence is.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import numpy as np

from tagparse.errors import TagparseError

ORDERS = ("random", "disagreement", "rare", "unreviewed")


def all_sample_ids(con: sqlite3.Connection) -> np.ndarray:
    """Every sample id; ids written by one bulk import are contiguous, which skips the scan."""
    lo, hi, n = con.execute("SELECT MIN(id), MAX(id), COUNT(*) FROM samples").fetchone()
    if not n:
        return np.empty(0, dtype=np.int64)
    if hi - lo + 1 == n:
        return np.arange(lo, hi + 1, dtype=np.int64)
    return np.fromiter(
        (r[0] for r in con.execute("SELECT id FROM samples ORDER BY id")), dtype=np.int64, count=n
    )


def _in_list(ids: Sequence[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


def disagreement_scores(
    con: sqlite3.Connection, parser_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, number of tags the parsers disagree on) for samples parsed by several parsers.

    Each pair of parsers is joined starting from the one with fewer parses (often an LLM run on a
    subset), so the cost follows the overlap, not the corpus. SQLite keeps only pairs whose stored
    tag lists differ as text; Python compares those as sets, so the same tags in another order do
    not count as a disagreement.
    """
    counts = dict(
        con.execute(
            f"SELECT parser_id, COUNT(*) FROM parses WHERE status = 'ok' AND parser_id IN ({_in_list(parser_ids)}) "
            "GROUP BY parser_id"
        )
    )
    parsed = sorted(counts, key=lambda p: (counts[p], p))
    scores: dict[int, int] = {}
    for i, small in enumerate(parsed):
        for large in parsed[i + 1 :]:
            rows = con.execute(
                "SELECT s.id, a.objects, a.attributes, b.objects, b.attributes FROM parses a "
                "CROSS JOIN parses b ON b.caption_hash = a.caption_hash AND b.parser_id = ? AND b.status = 'ok' "
                "CROSS JOIN samples s ON s.caption_hash = a.caption_hash "
                "WHERE a.parser_id = ? AND a.status = 'ok' "
                "AND (a.objects != b.objects OR a.attributes != b.attributes)",
                (large, small),
            )
            for sid, ao, aa, bo, ba in rows:
                diff = len(set(json.loads(ao)) ^ set(json.loads(bo))) + len(
                    set(json.loads(aa)) ^ set(json.loads(ba))
                )
                if diff:
                    scores[sid] = scores.get(sid, 0) + diff
    ids = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
    return ids, np.fromiter(scores.values(), dtype=np.int64, count=len(scores))


def rarest_tag_counts(con: sqlite3.Connection, db_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, corpus count of each sample's rarest labelled tag) from the active vocabulary."""
    vocab = {k: np.zeros(0, dtype=np.int64) for k in ("object", "attribute")}
    for kind in vocab:
        counts = [
            c for (c,) in con.execute("SELECT count FROM vocab WHERE kind=? ORDER BY idx", (kind,))
        ]
        vocab[kind] = np.asarray(counts, dtype=np.int64)
    if not len(vocab["object"]) and not len(vocab["attribute"]):
        raise TagparseError(
            f"{db_path}: --order rare needs a vocabulary; run `tagparse vocab --db {db_path}` first"
        )
    rows = con.execute("SELECT sample_id, objects, attributes FROM labels").fetchall()
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


def samples_with_tag(con: sqlite3.Connection, tag: str, parser_ids: Sequence[int]) -> np.ndarray:
    """Samples whose parse (by one of `parser_ids`) has `tag`, or to which a reviewer added it."""
    needle = json.dumps(tag, ensure_ascii=False)
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = con.execute(
        "SELECT s.id FROM parses p JOIN samples s ON s.caption_hash = p.caption_hash "
        f"WHERE p.status = 'ok' AND p.parser_id IN ({_in_list(parser_ids)}) "
        "AND (p.objects LIKE ? ESCAPE '\\' OR p.attributes LIKE ? ESCAPE '\\') "
        "UNION SELECT sample_id FROM verdicts WHERE tag = ? AND verdict = 'add'",
        (pattern, pattern, tag),
    )
    return np.fromiter((r[0] for r in rows), dtype=np.int64)


def build_order(
    con: sqlite3.Connection,
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
    ids = all_sample_ids(con)
    ids = ids[np.random.default_rng(seed).permutation(len(ids))]
    if tag_filter:
        ids = ids[np.isin(ids, samples_with_tag(con, tag_filter, parser_ids))]
    if order == "unreviewed":
        ids = ids[~np.isin(ids, reviewed)]
    elif order == "disagreement":
        ids = _sort_by(ids, *disagreement_scores(con, parser_ids), descending=True, missing=0)
    elif order == "rare":
        ids = _sort_by(
            ids, *rarest_tag_counts(con, db_path), descending=False, missing=np.iinfo(np.int64).max
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
