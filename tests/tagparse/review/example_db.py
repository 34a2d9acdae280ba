"""Make a small two-parser tags.db from a captions CSV without any NLP backend.

Used by `scripts/review_smoke_tmux.sh` when the spaCy backend is not installed. The two "parsers"
are keyword matchers over fixed word lists (the second knows fewer words), which is enough to give
the review screen real captions, tags and parser disagreements.
    python tests/tagparse/review/example_db.py examples/captions.csv /tmp/tags.db
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

from tagparse.db import TagsDB, caption_hash
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.vocab import build_vocab

NOUNS = {
    "kitten",
    "cat",
    "dog",
    "man",
    "woman",
    "girl",
    "boy",
    "child",
    "grass",
    "shoe",
    "jacket",
    "bicycle",
    "street",
    "city",
    "ice cream",
    "bench",
    "park",
    "frisbee",
    "beach",
    "car",
    "tree",
    "table",
    "plate",
    "pizza",
    "horse",
    "field",
    "bird",
    "water",
    "boat",
    "lake",
    "train",
    "building",
    "sky",
    "cloud",
    "flower",
    "vase",
    "window",
    "road",
    "bus",
    "umbrella",
    "rain",
    "snow",
    "mountain",
    "ball",
    "hat",
    "shirt",
    "sofa",
    "laptop",
    "book",
    "cup",
    "coffee",
    "sand",
    "wave",
    "sea",
    "sun",
    "chair",
    "kite",
}
ADJECTIVES = {
    "small",
    "brown",
    "red",
    "wet",
    "young",
    "wooden",
    "black",
    "yellow",
    "sandy",
    "white",
    "green",
    "blue",
    "large",
    "old",
    "tall",
    "little",
    "orange",
    "grey",
    "gray",
    "big",
    "pink",
    "purple",
}
PLURALS = {"girls": "girl", "boys": "boy", "children": "child", "men": "man", "women": "woman"}


def keyword_parse(caption: str, nouns: set[str], adjectives: set[str]) -> ParseResult:
    text = caption.lower()
    words = [
        PLURALS.get(w, w.rstrip("s") if w.rstrip("s") in nouns else w)
        for w in re.findall(r"[a-z]+", text)
    ]
    found = [n for n in sorted(nouns) if " " in n and n in text] + [w for w in words if w in nouns]
    return ParseResult(
        list(dict.fromkeys(found)), list(dict.fromkeys(w for w in words if w in adjectives))
    )


def main(csv_path: str, db_path: str) -> None:
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = [(r["filename"].rsplit(".", 1)[0], r["caption"]) for r in csv.DictReader(f)]
    db = TagsDB.open(Path(db_path), create=True)
    db.add_samples(rows)
    small_nouns = {n for i, n in enumerate(sorted(NOUNS)) if i % 4}
    for spec, nouns in (
        (ParserSpec("keywords", "kw-1", model="full"), NOUNS),
        (ParserSpec("keywords", "kw-1", model="small"), small_nouns),
    ):
        pid = db.register_parser(spec)
        db.write_parses(
            pid, [(caption_hash(c), keyword_parse(c, nouns, ADJECTIVES)) for _, c in rows]
        )
    build_vocab(db, 1000, 1000, parser="keywords:full", progress=False)
    print(f"{db_path}: {len(rows)} samples, 2 keyword parsers")


if __name__ == "__main__":
    main(*sys.argv[1:3])
