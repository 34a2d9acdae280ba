"""One sample as the reviewer sees it: caption, each parser's tags, and the verdicts so far.

Loading a sample is three indexed lookups (sample by id, parses by caption hash, verdicts by
sample id), so moving to the next sample costs the same on 1k or 12M samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from tagparse.db import Reader
from tagparse.db.schema import KINDS

Tag = tuple[str, str]  # (kind, tag)


@dataclass
class ParserTags:
    parser_id: int
    label: str
    status: str  # "ok" | "error"
    error: str
    tags: list[Tag]  # objects first, then attributes, in parse order


@dataclass
class SampleView:
    id: int
    key: str
    caption: str
    parses: list[ParserTags]
    verdicts: dict[Tag, str] = field(default_factory=dict)

    @property
    def ok_parses(self) -> list[ParserTags]:
        return [p for p in self.parses if p.status == "ok"]

    def parsed_tags(self) -> list[Tag]:
        """Every tag some parser produced, first appearance first."""
        return list(dict.fromkeys(t for p in self.ok_parses for t in p.tags))

    def added_tags(self) -> list[Tag]:
        """Tags no shown parser produced that the reviewer says are in the image (added or
        accepted)."""
        parsed = set(self.parsed_tags())
        return [t for t, v in self.verdicts.items() if t not in parsed and v in ("add", "accept")]

    def chips(self) -> list[Tag]:
        """The tags the cursor moves over: parsed tags, then added ones."""
        return self.parsed_tags() + self.added_tags()

    def disputed(self) -> set[Tag]:
        """Tags that some but not all parsers produced (empty with fewer than two parses)."""
        ok = self.ok_parses
        if len(ok) < 2:
            return set()
        sets = [set(p.tags) for p in ok]
        return set.union(*sets) - set.intersection(*sets)

    def first_parser_with(self, tag: Tag) -> int | None:
        return next((p.parser_id for p in self.ok_parses if tag in p.tags), None)


def load_sample(
    r: Reader, sample_id: int, parsers: dict[int, str], verdicts: dict[Tag, str]
) -> SampleView:
    """Read one sample and the parses of `parsers` (id -> label) for its caption."""
    key, caption, chash = r.sample(sample_id)
    parses = [
        ParserTags(pid, parsers[pid], status, error, _tags(objects, attributes))
        for pid, status, error, objects, attributes in r.parses_of_caption(chash)
        if pid in parsers
    ]
    return SampleView(sample_id, key, caption, parses, verdicts)


def _tags(objects_json: str, attributes_json: str) -> list[Tag]:
    out: list[Tag] = []
    for kind, js in zip(KINDS, (objects_json, attributes_json)):
        out.extend((kind, t) for t in dict.fromkeys(json.loads(js)))
    return out


def parser_labels(r: Reader, wanted: Sequence[int] | None = None) -> dict[int, str]:
    """parser id -> short label (`backend:model@fingerprint8`), optionally only those `wanted`."""
    out = {}
    for pid, fp, backend, model in r.parser_rows():
        if wanted is None or pid in wanted:
            out[pid] = f"{backend}{':' + model if model else ''}@{fp[:8]}"
    return out
