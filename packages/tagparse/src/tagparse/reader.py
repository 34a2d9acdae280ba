"""The trainer-facing reader: vocabulary + sample keys + label indices as CSR numpy arrays.

This is the only part of tagparse that trainers import. It reads with the plain sqlite3 driver
and concatenates int32 blobs, so 1M samples load in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagparse.db import TagsDB
from tagparse.db.schema import KINDS
from tagparse.errors import TagparseError


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


def _csr(blobs: list[bytes]) -> CSR:
    lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs)) // 4
    indptr = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.frombuffer(b"".join(blobs), dtype="<i4").astype(np.int32, copy=False)
    return CSR(indptr, indices)


def load_labels(path: str | Path) -> TagLabels:
    """Load vocabulary and labels; fails with a one-line message if `tagparse vocab` was not run."""
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
            rows = r.keyed_label_rows()
            late = r.verdicts_since(built.built_at)
    finally:
        db.close()
    keys = np.empty(len(rows), dtype=object)
    keys[:] = [r[1] for r in rows]
    labels = {"object": _csr([r[2] for r in rows]), "attribute": _csr([r[3] for r in rows])}
    if late:
        sample_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        labels = _apply_late_verdicts(labels, sample_ids, vocab, late)
    return TagLabels(
        Path(path),
        built.fingerprint,
        vocab,
        {k: np.asarray(v, dtype=np.int64) for k, v in counts.items()},
        keys,
        labels,
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
