"""A tagparse backend that answers with the generator's own caption tags (`gold.jsonl`).

The toy world knows the true tags of every caption, so the tag-source question ("how much does
the parser matter?") can be asked against a perfect parser. Registered at run time as
`toy-gold` (`register()`), it goes through the same `tagparse.pipeline.run_parse` as spaCy, NLTK
and the LLM backends, so its labels reach the trainer through the same tags.db.

Two truths (option `truth`): `caption`, what the caption says (a perfect parser: it keeps a wrong
colour and misses an unsaid one), and `image`, what is in the image (every object's shape, colour
and size and the background: clean tags however noisy the caption, the paper's argument).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from tagparse.backends import register_backend
from tagparse.parsing import ParseResult, ParserSpec

NAME = "toy-gold"
TRUTHS = ("caption", "image")


def image_tags(record: dict) -> tuple[list[str], list[str]]:
    """A gold.jsonl record's image truth: (shapes + background, colours + sizes), sorted."""
    scene = record["scene"]
    objects = {o["shape"] for o in scene} | {record["background"]}
    attributes = {o["colour"] for o in scene} | {o["size"] for o in scene}
    return sorted(objects), sorted(attributes)


class GoldBackend:
    """Looks every caption up in a world's train `gold.jsonl` (caption -> objects, attributes)."""

    def __init__(self, gold: Path, truth: str = "caption"):
        if truth not in TRUTHS:
            raise ValueError(f"toy-gold truth {truth!r}: choose {' or '.join(TRUTHS)}")
        self.tags: dict[str, tuple[list[str], list[str]]] = {}
        with open(gold, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                self.tags[record["caption"]] = (
                    image_tags(record)
                    if truth == "image"
                    else (record["objects"], record["attributes"])
                )
        digest = hashlib.sha256(Path(gold).read_bytes()).hexdigest()[:12]
        # the caption truth keeps version 2's fingerprint (its cached parses stay valid)
        model = f"gold-{digest}" if truth == "caption" else f"gold-image-{digest}"
        self.spec = ParserSpec(backend=NAME, normalizer_version="none", model=model)

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        out = []
        for caption in captions:
            if caption not in self.tags:
                out.append(ParseResult.failure("caption is not in the world's gold.jsonl"))
                continue
            objects, attributes = self.tags[caption]
            out.append(ParseResult(list(objects), list(attributes)))
        return out


def create(gold: str | Path, truth: str = "caption", **_ignored) -> GoldBackend:
    return GoldBackend(Path(gold), truth)


def register() -> None:
    """Make `toy-gold` a tagparse backend in this process (`options={"gold": PATH}`, and
    `"truth": "image"` for the image's tags)."""
    register_backend(NAME, create)
