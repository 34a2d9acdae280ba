"""The trainer-facing reader: vocabulary + sample keys + label indices as CSR numpy arrays.

This is the only part of tagparse that trainers import. It reads with the plain sqlite3 driver
and streams the rows, a chunk at a time, into arrays sized up front from one counting scan: at
12.4M samples a `fetchall` held several times the final arrays (a tuple, a key and two blob
objects per row) next to them. Rows that cannot be labels (a blob that is not whole int32
indices, an index past the vocabulary) end in one error naming the sample.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np

from tagparse.db import TagsDB
from tagparse.db.damage import damaged_labels
from tagparse.db.schema import KINDS
from tagparse.errors import TagparseError

_CHUNK_ROWS = 65536  # rows fetched at a time: a few MB of temporaries beside the arrays


@dataclass
class CSR:
    """Row i's indices are `indices[indptr[i]:indptr[i+1]]`."""

    indptr: np.ndarray  # int64, len = n_rows + 1
    indices: np.ndarray  # int32

    def row(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def dense(self, rows: np.ndarray | list[int], width: int) -> np.ndarray:
        """Multi-hot float32 matrix for a batch of rows."""
        out = np.zeros((len(rows), width), dtype=np.float32)
        for j, i in enumerate(rows):
            out[j, self.row(int(i))] = 1.0
        return out

    def with_rows(self, rows: dict[int, np.ndarray]) -> CSR:
        """A copy with some rows replaced; unchanged spans are copied in bulk."""
        lengths = np.diff(self.indptr)
        for i, r in rows.items():
            lengths[i] = len(r)
        indptr = np.zeros_like(self.indptr)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        prev = 0
        for i in sorted(rows):
            indices[indptr[prev] : indptr[i]] = self.indices[self.indptr[prev] : self.indptr[i]]
            indices[indptr[i] : indptr[i + 1]] = rows[i]
            prev = i + 1
        indices[indptr[prev] :] = self.indices[self.indptr[prev] :]
        return CSR(indptr, indices)


@dataclass
class TagLabels:
    """Labels of every labelled sample, aligned with `keys`."""

    path: Path
    fingerprint: str
    vocab: dict[str, list[str]]  # kind -> tags, index = label index
    counts: dict[str, np.ndarray]
    keys: np.ndarray  # object array of str
    labels: dict[str, CSR]  # kind -> CSR over samples

    def __len__(self) -> int:
        return len(self.keys)

    def key_index(self) -> dict[str, int]:
        """key -> row; built on demand since trainers that stream shards need it, others do not."""
        return {k: i for i, k in enumerate(self.keys.tolist())}


def load_labels(path: str | Path) -> TagLabels:
    """Load vocabulary and labels; fails with a one-line message if `tagparse vocab` was not run
    or a label row is damaged."""
    db = TagsDB.open(path, read_only=True)
    try:
        built = db.vocab_meta()
        if built is None:
            raise TagparseError(
                f"{db.path}: no vocabulary yet; run `tagparse vocab --db {db.path}` first"
            )
        with db.reader() as r:
            vocab: dict[str, list[str]] = {k: [] for k in KINDS}
            counts: dict[str, list[int]] = {k: [] for k in KINDS}
            for kind, tag, count in r.vocab_rows():
                vocab[kind].append(tag)
                counts[kind].append(count)
            n, object_bytes, attribute_bytes, damaged = r.label_sizes()
            if damaged:
                raise _damaged_blob(db.path, r.first_damaged_label_row())
            sizes = {"object": object_bytes // 4, "attribute": attribute_bytes // 4}
            with _collector_paused():
                keys, sample_ids, labels = _stream_rows(r.keyed_label_rows(), n, sizes, db.path)
            late = r.verdicts_since(built.built_at)
        if db.vocab_meta() != built:
            raise _changed(db.path)
    finally:
        db.close()
    _check_indices(db.path, labels, vocab, keys, sample_ids)
    if late:
        labels = _apply_late_verdicts(labels, sample_ids, vocab, late)
    return TagLabels(
        Path(path),
        built.fingerprint,
        vocab,
        {k: np.asarray(v, dtype=np.int64) for k, v in counts.items()},
        keys,
        labels,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the rows stream in: they are tuples of ints,
    str and bytes (no cycles, nothing for it to free), but the millions of them allocated start
    a collection every few thousand, and each full one walks every key already stored. At 1M
    samples that was 2 of the reader's 5 seconds (bench/bench_scale.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stream_rows(
    cursor, n: int, sizes: dict[str, int], path: Path
) -> tuple[np.ndarray, np.ndarray, dict[str, CSR]]:
    """keys, sample ids and one CSR per kind, filled chunk by chunk into preallocated arrays."""
    keys = np.empty(n, dtype=object)
    sample_ids = np.empty(n, dtype=np.int64)
    indptr = {k: np.zeros(n + 1, dtype=np.int64) for k in KINDS}
    indices = {k: np.empty(sizes[k], dtype=np.int32) for k in KINDS}
    row, filled = 0, dict.fromkeys(KINDS, 0)
    while chunk := cursor.fetchmany(_CHUNK_ROWS):
        stop = row + len(chunk)
        if stop > n:
            raise _changed(path)
        # column by column: zip(*chunk) of 65536 rows took 4x as long (bench_scale.py)
        ids, chunk_keys, *blobs = (list(map(itemgetter(c), chunk)) for c in range(2 + len(KINDS)))
        sample_ids[row:stop] = ids
        keys[row:stop] = chunk_keys
        for kind, kind_blobs in zip(KINDS, blobs):
            data = b"".join(kind_blobs)
            start, end = filled[kind], filled[kind] + len(data) // 4
            if len(data) % 4 or end > sizes[kind]:
                raise _changed(path)
            indices[kind][start:end] = np.frombuffer(data, dtype="<i4")
            ends = indptr[kind][row + 1 : stop + 1]
            np.cumsum(np.fromiter(map(len, kind_blobs), np.int64, len(kind_blobs)) // 4, out=ends)
            ends += start
            filled[kind] = end
        row = stop
    if row != n or filled != sizes:
        raise _changed(path)
    return keys, sample_ids, {k: CSR(indptr[k], indices[k]) for k in KINDS}


def _changed(path: Path) -> TagparseError:
    return TagparseError(
        f"{path}: the labels changed while they were read (a `tagparse vocab` ran); load again"
    )


def _damaged_blob(path: Path, row: tuple[int, str, str, int, str, int]) -> TagparseError:
    sample_id, key, *columns = row
    for kind, (kind_type, length) in zip(KINDS, (columns[:2], columns[2:])):
        if kind_type != "blob":
            problem = f"its {kind}s column is {kind_type}, not a blob of int32 tag indices"
            break
        if length % 4:
            problem = f"its {kind}s blob is {length} bytes, not a whole number of int32 indices"
            break
    else:
        problem = "its blobs are not int32 tag indices"
    return damaged_labels(path, key, sample_id, problem)


def _check_indices(
    path: Path,
    labels: dict[str, CSR],
    vocab: dict[str, list[str]],
    keys: np.ndarray,
    sample_ids: np.ndarray,
) -> None:
    """A label index outside the vocabulary would fail (or mislabel) deep inside training."""
    for kind in KINDS:
        idx, size = labels[kind].indices, len(vocab[kind])
        if len(idx) == 0 or (idx.min() >= 0 and idx.max() < size):
            continue
        pos = int(np.flatnonzero((idx < 0) | (idx >= size))[0])
        row = int(np.searchsorted(labels[kind].indptr, pos, side="right")) - 1
        raise damaged_labels(
            path,
            keys[row],
            int(sample_ids[row]),
            f"its {kind}s blob holds tag index {idx[pos]}, but the vocabulary has {size} {kind}s",
        )


def _apply_late_verdicts(
    labels: dict[str, CSR],
    sample_ids: np.ndarray,
    vocab: dict[str, list[str]],
    verdicts: list[tuple[int, str, str, str]],
) -> dict[str, CSR]:
    """Apply review verdicts recorded after `tagparse vocab` to the samples they touch.

    The labels already include every earlier verdict; later ones are replayed in order (reject
    removes the tag, add/accept puts it back if it is in the vocabulary), so a reviewer's work
    reaches the trainer without rebuilding the vocabulary.
    """
    index = {k: {t: i for i, t in enumerate(vocab[k])} for k in KINDS}
    changed: dict[str, dict[int, set[int]]] = {k: {} for k in KINDS}
    for sid, kind, tag, verdict in verdicts:
        row = int(np.searchsorted(sample_ids, sid))
        idx = index.get(kind, {}).get(tag)
        if idx is None or row >= len(sample_ids) or sample_ids[row] != sid:
            continue  # tag outside the vocabulary, or a sample without labels
        tags = changed[kind].setdefault(row, set(labels[kind].row(row).tolist()))
        if verdict == "reject":
            tags.discard(idx)
        else:
            tags.add(idx)
    return {
        k: labels[k].with_rows(
            {r: np.array(sorted(t), dtype=np.int32) for r, t in changed[k].items()}
        )
        if changed[k]
        else labels[k]
        for k in KINDS
    }
