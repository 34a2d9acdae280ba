"""Import TagAlign's reference tag files into a tags.db.

TagAlign's published tags (github.com/Qinying-Liu/TagAlign, README "Train and Evaluate") are a tag
list CSV (`object_list.csv`, row i = tag index i) and a JSON `{filename: [tag indices]}`; its
dataset looks labels up by the file name's basename. The tag list's exact layout is not in the
code, so the reader accepts one tag per row with or without a header and an optional index column.
The imported tags are the parses of one parser, `tagalign-import`, with TagAlign's indices kept as
the vocabulary, so the labels a trainer reads match the published files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tagparse.db import Store, TagsDB, VocabMeta, caption_hash
from tagparse.db.tagsdb import removed_if_left_empty
from tagparse.errors import TagparseError
from tagparse.inputs import InputOptions, InputStream
from tagparse.jsonstream import iter_json_object
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.vocab import vocab_fingerprint

IMPORT_BACKEND = "tagalign-import"
_HEADER_NAMES = {"object", "objects", "tag", "tags", "name", "class", "label", "word", "noun"}


@dataclass
class ImportSummary:
    tags: int
    samples: int
    new_samples: int
    key_conflicts: int  # keys already stored with another caption (the first caption wins)
    parse_conflicts: int  # captions seen with two different tag lists (the first one wins)
    without_caption: int
    vocab_fingerprint: str


def read_tag_list(path: str | Path) -> list[str]:
    """TagAlign's tag list CSV: row order (or an integer index column) gives the tag index.

    A repeated index or a repeated tag would make two label indices ambiguous: both are errors
    naming the two rows, never a silently dropped tag.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TagparseError(f"{path}: no such tag list file") from None
    except UnicodeDecodeError:
        raise TagparseError(f"{path}: not UTF-8; re-encode the tag list as UTF-8") from None
    rows = [
        (lineno, r)
        for lineno, r in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), 1)
        if r and any(c.strip() for c in r)
    ]
    if not rows:
        raise TagparseError(f"{path}: empty tag list")
    indexed = all(len(r) >= 2 for _, r in rows) and all(_is_int(r[0]) for _, r in rows[1:])
    if indexed:
        if not _is_int(rows[0][1][0]):
            rows = rows[1:]
        by_index: dict[int, tuple[int, str]] = {}
        for lineno, r in rows:
            index = int(r[0])
            if index in by_index:
                raise TagparseError(
                    f"{path}: line {lineno}: tag index {index} again (first on line "
                    f"{by_index[index][0]}); give every tag its own index 0..N-1"
                )
            by_index[index] = (lineno, r[1].strip())
        if sorted(by_index) != list(range(len(by_index))):
            raise TagparseError(f"{path}: tag indices must be 0..N-1 without gaps")
        numbered = [by_index[i] for i in range(len(by_index))]
    else:
        if rows[0][1][0].strip().lower() in _HEADER_NAMES:
            rows = rows[1:]
        numbered = [(lineno, r[0].strip()) for lineno, r in rows]
    first_line: dict[str, int] = {}
    for lineno, tag in numbered:
        if not tag:
            raise TagparseError(f"{path}: line {lineno}: empty tag; remove the row or name it")
        if tag in first_line:
            raise TagparseError(
                f"{path}: line {lineno}: tag {tag!r} again (first on line {first_line[tag]}); "
                "each tag may appear once"
            )
        first_line[tag] = lineno
    return [tag for _, tag in numbered]


def import_tagalign(
    db_path: str | Path,
    tag_list: str | Path,
    index_json: str | Path,
    *,
    captions: str | None = None,
    basename: bool = False,
    batch_size: int = 10_000,
    progress: bool = True,
) -> ImportSummary:
    """Store TagAlign reference tags as parses of parser `tagalign-import` plus its vocabulary.

    The vocabulary keeps TagAlign's tag indices (so labels match the published files). Without a
    caption file the reference data has no captions; a sample's caption then holds its tag list
    as text, so equal tag lists share one parse like equal captions do.
    Every input is checked before the tags.db is touched (one streaming pass over the JSON), and
    the old vocabulary is replaced in the same single transaction that writes the new one: a
    failed import leaves the file exactly as it was (and creates none).
    """
    tags = read_tag_list(tag_list)
    caption_of = _read_captions(captions, basename) if captions else {}
    entries = _index_entries(Path(index_json), len(tags), basename)
    n_entries = sum(1 for _ in entries())  # the validating pass: raises on the first bad entry
    spec = ParserSpec(
        backend=IMPORT_BACKEND,
        normalizer_version="tagalign-reference",
        model=Path(tag_list).name,
        params={"tag_list_sha1": _file_sha1(tag_list)},
    )
    counts = np.zeros(len(tags), dtype=np.int64)
    summary = ImportSummary(len(tags), 0, 0, 0, 0, 0, "")
    summary.vocab_fingerprint = vocab_fingerprint({"object": tags, "attribute": []})
    with removed_if_left_empty(db_path):
        db = TagsDB.open(db_path, create=True)
        try:
            with db.transaction() as conn:
                parser_id = db.register_parser(spec, conn)
                db.clear_vocab(conn)  # the old vocabulary's labels would point elsewhere
                batcher = _ImportBatcher(db, conn, parser_id, tags, caption_of, counts, summary)
                bar = tqdm(total=n_entries, desc="importing", unit="sample", disable=not progress)
                batch: list[tuple[str, list[int]]] = []
                for entry in entries():
                    batch.append(entry)
                    if len(batch) >= batch_size:
                        batcher.write(batch)
                        bar.update(len(batch))
                        batch = []
                batcher.write(batch)
                bar.update(len(batch))
                bar.close()
                db.write_vocab(  # the labels were written batch by batch
                    {"object": [(t, int(c)) for t, c in zip(tags, counts)]},
                    VocabMeta(summary.vocab_fingerprint, spec.fingerprint, 0, time.time()),
                    conn=conn,
                )
        finally:
            db.close()
    return summary


def _index_entries(
    path: Path, n_tags: int, basename: bool
) -> Callable[[], Iterator[tuple[str, list[int]]]]:
    """A re-startable stream of checked (key, sorted distinct tag indices) entries of the JSON."""

    def entries() -> Iterator[tuple[str, list[int]]]:
        for key, indices in iter_json_object(path):
            if basename:
                key = os.path.basename(key)
            if not isinstance(indices, list) or not all(
                type(i) is int and 0 <= i < n_tags for i in indices
            ):
                raise TagparseError(
                    f"{path}: key {key!r}: expected a list of tag indices in 0..{n_tags - 1} "
                    f"(got {json.dumps(indices)[:80]}); fix the entry or pass the matching --tags"
                )
            yield key, sorted(set(indices))

    return entries


@dataclass
class _ImportBatcher:
    """Writes batches of imported entries inside the import's one transaction."""

    db: TagsDB
    conn: Store
    parser_id: int
    tags: list[str]
    caption_of: dict[str, str]
    counts: np.ndarray
    summary: ImportSummary

    def write(self, batch: list[tuple[str, list[int]]]) -> None:
        if not batch:
            return
        db, conn, summary = self.db, self.conn, self.summary
        rows, parses = [], {}
        for key, idx in batch:
            names = [self.tags[i] for i in idx]
            caption = self.caption_of.get(key)
            if caption is None:
                summary.without_caption += 1 if self.caption_of else 0
                caption = ", ".join(names)
            rows.append((key, caption))
            h = caption_hash(caption)
            if h in parses and parses[h].objects != names:
                summary.parse_conflicts += 1
                continue
            parses.setdefault(h, ParseResult(names, [], raw_output=json.dumps(idx)))
        stored = db.parse_states(self.parser_id, parses, conn)
        written = db.add_samples(rows, conn=conn)
        new_parses = [(h, r) for h, r in parses.items() if h not in stored]
        db.write_parses(self.parser_id, new_parses, conn=conn)
        ids = db.sample_ids([k for k, _ in batch], conn)
        label_rows = []
        for key, idx in batch:
            arr = np.asarray(idx, dtype="<i4")
            self.counts[arr] += 1
            label_rows.append((ids[key], arr.tobytes(), b""))
        db.write_labels(label_rows, conn)
        summary.samples += len(batch)
        summary.new_samples += written.added
        summary.key_conflicts += written.conflicts


def _read_captions(path: str, basename: bool) -> dict[str, str]:
    """TagAlign's meta CSV (`filename,caption`); needed in memory to join the index JSON to it."""
    stream = InputStream([path], InputOptions(format="csv"))
    return {(os.path.basename(r.key) if basename else r.key): r.caption for r in stream}


def _file_sha1(path: str | Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _is_int(s: str) -> bool:
    return s.strip().lstrip("-").isdigit()
