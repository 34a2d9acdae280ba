"""Real tags.db fixtures for the review tests, written through `tagparse.db.TagsDB`.

Two parsers (a spaCy-like and an LLM-like configuration) with hand-written parses, so the tests do
not depend on any NLP backend.
"""

from __future__ import annotations

from pathlib import Path

from tagparse.db import TagsDB, caption_hash
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.vocab import build_vocab

SPACY = ParserSpec("spacy", "norm-1", model="en_core_web_sm")
LLM = ParserSpec("openai", "norm-1", model="smollm2", prompt_id="tags-v1", prompt_hash="p1")

LONG_CAPTION = (
    "A man in a long grey coat walks his small dog along a wet street at dusk, " * 27
).strip()

# key -> (caption, spaCy parse, LLM parse); a parse is (objects, attributes) or an error string.
SAMPLES: dict[str, tuple[str, object, object]] = {
    "img001": (
        "A brown dog catches a red frisbee in the park.",
        (["dog", "frisbee", "park"], ["brown", "red"]),
        (["dog", "frisbee"], ["brown", "red"]),
    ),
    "img002": (
        "Two children are playing football on green grass.",
        (["child", "football", "grass"], ["green"]),
        (["child", "ball", "grass"], ["green"]),
    ),
    "img003": ("A cat sleeping on a sofa.", (["cat", "sofa"], []), (["sofa", "cat"], [])),
    "img004": ("Blurry photo.", ([], []), ([], [])),
    "img005": (
        LONG_CAPTION,
        (["man", "coat", "dog", "street"], ["grey", "small", "wet"]),
        "model returned no JSON",
    ),
    "img006": (
        "A red car parked next to a tree.",
        (["car", "tree"], ["red"]),
        (["car", "tree"], ["red"]),
    ),
    "img007": (
        "A black cat on a red sofa.",
        (["cat", "sofa"], ["black", "red"]),
        (["cat", "sofa"], ["black"]),
    ),
    "img008": (
        "A dog and a man on the beach.",
        (["dog", "man", "beach"], []),
        (["dog", "man", "beach"], []),
    ),
}


def _result(parse: object) -> ParseResult:
    if isinstance(parse, str):
        return ParseResult.failure(parse, raw_output="sorry")
    objects, attributes = parse
    return ParseResult(list(objects), list(attributes))


def make_tags_db(
    path: Path, samples: dict = SAMPLES, *, vocab: bool = True, llm: bool = True
) -> Path:
    db = TagsDB.open(path, create=True)
    db.add_samples([(key, caption) for key, (caption, _, _) in samples.items()])
    specs = [(SPACY, 1)] + ([(LLM, 2)] if llm else [])
    for spec, col in specs:
        pid = db.register_parser(spec)
        db.write_parses(
            pid, [(caption_hash(row[0]), _result(row[col])) for row in samples.values()]
        )
    if vocab:
        build_vocab(db, 100, 100, parser="spacy", progress=False)
    db.close()
    return path
