"""Corpus statistics of a tags.db: sample counts, tag coverage and top tags per parser.

Tags are counted per sample (a caption shared by many samples counts for each of them) with one
SQL pass over distinct captions, so the cost grows with distinct captions, not samples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tagparse.db import Reader, TagsDB
from tagparse.db.damage import damaged_parse, decoded_parse
from tagparse.db.schema import KINDS


@dataclass
class ParserStats:
    label: str
    captions_ok: int  # distinct captions parsed successfully
    captions_failed: int
    samples_parsed: int  # samples whose caption has an ok parse
    samples_tagged: int  # ... and at least one object or attribute
    distinct_tags: dict[str, int]
    top: dict[str, list[tuple[str, int]]]


@dataclass
class DBStats:
    path: str
    format_version: str
    samples: int
    distinct_captions: int
    vocab_sizes: dict[str, int]
    vocab_fingerprint: str | None
    verdicts: int
    parsers: list[ParserStats]

    def lines(self) -> list[str]:
        out = [
            (
                f"{self.path}: format v{self.format_version}, {self.samples:,} samples, "
                f"{self.distinct_captions:,} distinct captions, {self.verdicts:,} review verdicts"
            )
        ]
        if self.vocab_fingerprint:
            out.append(
                f"vocabulary {self.vocab_fingerprint}: "
                f"{self.vocab_sizes.get('object', 0):,} objects, "
                f"{self.vocab_sizes.get('attribute', 0):,} attributes"
            )
        else:
            out.append("vocabulary: none yet (run `tagparse vocab`)")
        for p in self.parsers:
            share = p.samples_tagged / self.samples if self.samples else 0.0
            out.append(
                f"parser {p.label}: {p.captions_ok:,} captions ok, {p.captions_failed:,} failed; "
                f"{p.samples_parsed:,} samples parsed, "
                f"{share:.1%} of samples have at least one tag; "
                f"{p.distinct_tags['object']:,} distinct objects, "
                f"{p.distinct_tags['attribute']:,} distinct attributes"
            )
            for kind in KINDS:
                top = ", ".join(f"{t} ({c:,})" for t, c in p.top[kind]) or "-"
                out.append(f"  top {kind}s: {top}")
        return out


def collect_stats(db: TagsDB, top: int = 10) -> DBStats:
    with db.reader() as r:
        samples = r.count_samples()
        captions = r.count_distinct_captions()
        verdicts = r.count_verdicts()
        sizes = r.vocab_sizes()
        parsers = [
            _parser_stats(r, db.path, pid, f"{backend}{':' + model if model else ''}@{fp[:8]}", top)
            for pid, fp, backend, model in r.parser_rows()
        ]
    return DBStats(
        str(db.path),
        db.get_meta("format_version", "?"),
        samples,
        captions,
        sizes,
        built.fingerprint if (built := db.vocab_meta()) else None,
        verdicts,
        parsers,
    )


def _parser_stats(r: Reader, db_path: Path, parser_id: int, label: str, top: int) -> ParserStats:
    status = r.parse_status_counts(parser_id)
    counts = {k: Counter() for k in KINDS}
    parsed = tagged = 0
    for obj_json, attr_json, h, n in r.ok_parses_with_sample_counts(parser_id):
        parsed += n
        objects, attributes = decoded_parse(
            obj_json,
            attr_json,
            lambda problem, h=h: damaged_parse(
                db_path, r.first_key_of_caption(h), parser_id, h, problem
            ),
        )
        tags = {"object": set(objects), "attribute": set(attributes)}
        if tags["object"] or tags["attribute"]:
            tagged += n
        for kind in KINDS:
            for t in tags[kind]:
                counts[kind][t] += n
    return ParserStats(
        label,
        status.get("ok", 0),
        status.get("error", 0),
        parsed,
        tagged,
        {k: len(counts[k]) for k in KINDS},
        {k: counts[k].most_common(top) for k in KINDS},
    )
