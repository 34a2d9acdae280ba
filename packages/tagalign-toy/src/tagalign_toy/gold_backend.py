"""A tagparse backend that answers with the generator's own caption tags (`gold.jsonl`).

The toy world knows the true tags of every caption, so the tag-source question ("how much does
the parser matter?") can be asked against a perfect parser. Registered at run time as
`toy-gold` (`register()`), it goes through the same `tagparse.pipeline.run_parse` as spaCy, NLTK
and the LLM backends, so its labels reach the trainer through the same tags.db.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from tagparse.backends import register_backend
from tagparse.parsing import ParseResult, ParserSpec

NAME = "toy-gold"


class GoldBackend:
    """Looks every caption up in a world's train `gold.jsonl` (caption -> objects, attributes)."""

    def __init__(self, gold: Path):
        self.tags: dict[str, tuple[list[str], list[str]]] = {}
        with open(gold, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                self.tags[record["caption"]] = (record["objects"], record["attributes"])
        digest = hashlib.sha256(Path(gold).read_bytes()).hexdigest()[:12]
        self.spec = ParserSpec(backend=NAME, normalizer_version="none", model=f"gold-{digest}")

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        out = []
        for caption in captions:
            if caption not in self.tags:
                out.append(ParseResult.failure("caption is not in the world's gold.jsonl"))
                continue
            objects, attributes = self.tags[caption]
            out.append(ParseResult(list(objects), list(attributes)))
        return out


def create(gold: str | Path, **_ignored) -> GoldBackend:
    return GoldBackend(Path(gold))


def register() -> None:
    """Make `toy-gold` a tagparse backend in this process (`options={"gold": PATH}`)."""
    register_backend(NAME, create)
