"""Build the top-K tag vocabulary and the per-sample labels from parses and review verdicts.

Tags are interned to integers in one streaming pass, so 12M samples never become 12M Python
lists; counts are document frequencies (a tag counts once per sample).
"""

from __future__ import annotations

import hashlib
import json
import time
from array import array
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from tagparse.db import Reader, TagsDB, VocabMeta
from tagparse.db.damage import NotTagList, check_tags, damaged_parse, tag_list
from tagparse.db.schema import KINDS
from tagparse.errors import TagparseError


@dataclass
class VocabSummary:
    parser_label: str
    samples: int
    labelled: int
    sizes: dict[str, int]
    fingerprint: str
    top: dict[str, list[tuple[str, int]]]


def vocab_fingerprint(tags_by_kind: dict[str, list[str]]) -> str:
    """Identity of a vocabulary (order matters: label indices point into it)."""
    h = hashlib.sha256()
    for kind in KINDS:
        for i, tag in enumerate(tags_by_kind.get(kind, [])):
            h.update(f"{kind}\t{i}\t{tag}\n".encode())
    return h.hexdigest()[:16]


def apply_verdicts(tags: list[str], kind: str, verdicts: dict[tuple[str, str], str]) -> list[str]:
    """A sample's tags after review: rejected tags removed, added tags appended."""
    kept = [t for t in tags if verdicts.get((kind, t)) != "reject"]
    added = [t for (k, t), v in verdicts.items() if k == kind and v == "add" and t not in kept]
    return kept + added


def _label_blobs(flat: np.ndarray, lens: np.ndarray, remap: np.ndarray) -> list[bytes]:
    """Per-sample sorted vocabulary indices as int32 blobs, vectorised over all samples at once."""
    owner = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    mapped = remap[flat]
    keep = mapped >= 0
    owner, mapped = owner[keep], mapped[keep]
    order = np.lexsort((mapped, owner))
    data = mapped[order].astype("<i4").tobytes()
    ends = np.cumsum(np.bincount(owner, minlength=len(lens))) * 4
    starts = np.concatenate(([0], ends[:-1]))
    return [data[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def _damaged(db: TagsDB, r: Reader, parser_id: int, sample_id: int | None) -> TagparseError:
    """The error naming the first parse that is not two JSON lists of strings (with no
    `sample_id`, rows are read again with the strict check: this runs only after the fast scan
    met a damaged one)."""
    if sample_id is None:
        rows = r.tag_lists_by_sample(parser_id)
        sample_id = next(sid for sid, both in rows if not _two_tag_lists(both))
    key, _, h = r.sample(sample_id)
    for pid, _, _, objects, attributes in r.parses_of_caption(h):
        for name, text in (("objects", objects), ("attributes", attributes)):
            try:
                if pid == parser_id:
                    tag_list(text)
            except NotTagList as exc:
                return damaged_parse(db.path, key, pid, h, f"{name} {exc}")
    return damaged_parse(db.path, key, parser_id, h, "could not be read as two tag lists")


def _two_tag_lists(both: str) -> bool:
    try:
        pair = json.loads(both)
        for tags in pair if isinstance(pair, list) and len(pair) == 2 else [None]:
            check_tags(tags)
    except (ValueError, TypeError, NotTagList):
        return False
    return True


def build_vocab(
    db: TagsDB,
    n_objects: int,
    n_attributes: int,
    min_count: int = 1,
    parser: str | None = None,
    progress: bool = True,
) -> VocabSummary:
    """Write the top-K vocabulary and every parsed sample's labels, replacing the previous ones."""
    p = db.resolve_parser(parser)
    with db.reader() as r:
        if r.count_ok_parses(p.id) == 0:
            raise TagparseError(
                f"{db.path}: parser {p.backend}@{p.fingerprint[:8]} has no successful parses; "
                "run `tagparse run` first"
            )
        verdicts = r.latest_verdicts()
        total = r.count_samples()
        intern: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        sample_ids = array("q")
        ids = {k: array("i") for k in KINDS}  # compact: 12M samples x 8 tags stay ~400 MB
        lens = {k: array("i") for k in KINDS}
        # Both tag lists in one JSON text per row, decoded by the C scanner directly: the per-row
        # decode is most of the cost at 12M samples.
        rows = r.tag_lists_by_sample(p.id)
        scan = json.JSONDecoder().scan_once
        for sid, both in tqdm(
            rows,
            total=total,
            desc="labels",
            unit="sample",
            disable=None if progress else True,  # None: only on a terminal, not in logs/pipes
            mininterval=0.5,
        ):
            sample_ids.append(sid)
            v = verdicts.get(sid)
            try:
                pair, end = scan(both, 0)
                if end != len(both) or len(pair) != 2 or not all(type(t) is list for t in pair):
                    raise ValueError
                for kind, tags in zip(KINDS, pair):
                    if v:
                        tags = apply_verdicts(tags, kind, v)
                    table = intern[kind]
                    uniq = {table.setdefault(t, len(table)) for t in tags}
                    ids[kind].extend(uniq)
                    lens[kind].append(len(uniq))
            except (ValueError, TypeError, StopIteration):  # not JSON, not a list, a list in it
                raise _damaged(db, r, p.id, sid) from None
        if any(type(t) is not str for k in KINDS for t in intern[k]):  # a number among the tags
            raise _damaged(db, r, p.id, None)

    vocab: dict[str, list[str]] = {}
    counts: dict[str, list[int]] = {}
    remap: dict[str, np.ndarray] = {}
    limits = {"object": n_objects, "attribute": n_attributes}
    for kind in KINDS:
        flat = np.asarray(ids[kind], dtype=np.int64)
        names = list(intern[kind])
        freq = np.bincount(flat, minlength=len(names))
        order = sorted(range(len(names)), key=lambda i: (-freq[i], names[i]))
        keep = [i for i in order if freq[i] >= min_count][: limits[kind]]
        vocab[kind] = [names[i] for i in keep]
        counts[kind] = [int(freq[i]) for i in keep]
        m = np.full(len(names) + 1, -1, dtype=np.int32)
        m[keep] = np.arange(len(keep), dtype=np.int32)
        remap[kind] = m
    fp = vocab_fingerprint(vocab)

    blobs = {
        k: _label_blobs(
            np.frombuffer(ids[k], dtype=np.int32), np.frombuffer(lens[k], dtype=np.int32), remap[k]
        )
        for k in KINDS
    }
    db.write_vocab(
        {k: list(zip(vocab[k], counts[k])) for k in KINDS},
        VocabMeta(fp, p.fingerprint, min_count, time.time()),
        labels=zip(sample_ids, blobs["object"], blobs["attribute"]),
    )
    return VocabSummary(
        parser_label=f"{p.backend}@{p.fingerprint[:8]}",
        samples=total,
        labelled=len(sample_ids),
        sizes={k: len(vocab[k]) for k in KINDS},
        fingerprint=fp,
        top={k: list(zip(vocab[k], counts[k]))[:20] for k in KINDS},
    )
