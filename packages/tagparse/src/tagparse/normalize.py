"""Tag normalization shared by every backend, versioned because it changes what gets cached.

A raw tag ("The two Guys'", "traffic lights") becomes a canonical vocabulary entry ("man",
"traffic light"): lowercase, punctuation/determiners/numbers stripped, the head noun (last word) of
an object singularized, compounds kept whole, an optional synonym map applied and non-visual nouns
(a stop-list) dropped. Every step is idempotent, so normalizing twice changes nothing.

`Normalizer.version` = `NORMALIZER_VERSION` + a hash of the synonym map and stop-list; it is part
of each parser's fingerprint, so changing either re-parses instead of mixing old and new tags.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

from tagparse.errors import TagparseError

NORMALIZER_VERSION = "1"

# Words stripped anywhere in a tag: articles, demonstratives, possessives and quantifiers. They
# never name what is in the picture ("the man", "his hat", "several cars").
DETERMINERS = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "some",
        "any",
        "each",
        "every",
        "all",
        "both",
        "either",
        "neither",
        "another",
        "other",
        "such",
        "several",
        "many",
        "few",
        "much",
        "more",
        "most",
        "lots",
        "plenty",
        "his",
        "her",
        "its",
        "their",
        "my",
        "your",
        "our",
        "whose",
        "which",
        "what",
    ]
)

NUMBER_WORDS = frozenset(
    [
        "zero",
        "one",
        "ones",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "hundreds",
        "thousand",
        "thousands",
        "million",
        "millions",
        "dozen",
        "dozens",
        "tens",
    ]
)

_DROPPED = DETERMINERS | NUMBER_WORDS
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*(?:st|nd|rd|th|s)?")
_POSSESSIVE = re.compile(r"['’]s\b")
# A word: letters/digits, optionally joined by inner hyphens or apostrophes ("t-shirt", "o'clock").
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")

# Plural-only nouns: their "singular" names a different thing (shorts -> short) or nothing.
PLURALIA_TANTUM = frozenset(
    [
        "pants",
        "trousers",
        "jeans",
        "shorts",
        "leggings",
        "tights",
        "overalls",
        "pajamas",
        "pyjamas",
        "glasses",
        "sunglasses",
        "eyeglasses",
        "goggles",
        "binoculars",
        "scissors",
        "clothes",
        "tongs",
        "pliers",
        "shears",
        "headquarters",
    ]
)
# lemminflect returns "leave" first for "leaves"; in captions it is nearly always foliage.
_SINGULAR_OVERRIDES = {"leaves": "leaf"}


def clean(text: str) -> str:
    """Lowercase, drop punctuation, possessive 's, determiners and numbers; '' if nothing left."""
    text = _POSSESSIVE.sub("", text.lower())
    words = [w for w in _WORD.findall(text) if w not in _DROPPED and not _DIGITS.fullmatch(w)]
    return " ".join(words)


@lru_cache(maxsize=65536)
def singularize(word: str) -> str:
    """Singular of a noun via lemminflect; the word itself when that would not be a fixed point."""
    if word in PLURALIA_TANTUM:
        return word
    if word in _SINGULAR_OVERRIDES:
        return _SINGULAR_OVERRIDES[word]
    lemma = _noun_lemma(word)
    # Accept only a lemma that is itself stable and clean, so that singularize is idempotent.
    if not lemma or lemma == word or clean(lemma) != lemma or _noun_lemma(lemma) != lemma:
        return word
    return lemma


def singularize_head(tag: str) -> str:
    """Singularize the last word of a (maybe compound) noun: "traffic lights" -> "traffic light"."""
    head, _, last = tag.rpartition(" ")
    last = singularize(last)
    return f"{head} {last}" if head else last


def _noun_lemma(word: str) -> str:
    try:
        from lemminflect import getLemma
    except ImportError:  # pragma: no cover - depends on the install
        raise TagparseError(
            "singularizing tags needs lemminflect; install it with `pip install 'tagparse[spacy]'`"
        ) from None
    lemmas = getLemma(word, upos="NOUN")
    return lemmas[0] if lemmas else word


@lru_cache(maxsize=1)
def default_stoplist() -> frozenset[str]:
    """The shipped stop-list of non-visual nouns (see `data/stoplist.txt` for the reasoning)."""
    text = resources.files("tagparse").joinpath("data/stoplist.txt").read_text(encoding="utf-8")
    return frozenset(_read_word_lines(text.splitlines(), "stoplist.txt"))


class Normalizer:
    """Canonicalizes object and attribute tags.

    `synonyms` maps a tag to its preferred form (applied to both kinds, after singularization for
    objects); `stoplist` lists object tags (or head nouns) to drop. `stoplist=None` means the
    shipped default list; pass an empty set to keep every noun.
    """

    def __init__(self, synonyms: dict[str, str] | None = None, stoplist: set[str] | None = None):
        self._stop_raw = sorted(
            {clean(w) for w in (default_stoplist() if stoplist is None else stoplist)} - {""}
        )
        self._synonyms_raw = {clean(k): clean(v) for k, v in (synonyms or {}).items()}
        self._attribute_synonyms = _resolve_chains(self._synonyms_raw)  # also rejects cycles early
        # Hash the cleaned inputs, not their singularized forms: singularizing needs lemminflect,
        # which imports spaCy (seconds), and a cache-only re-run computes the fingerprint but parses
        # nothing.
        payload = json.dumps(
            {"synonyms": self._synonyms_raw, "stoplist": self._stop_raw}, sort_keys=True
        )
        self.version = f"{NORMALIZER_VERSION}+{hashlib.sha256(payload.encode()).hexdigest()[:8]}"

    @cached_property
    def stoplist(self) -> frozenset[str]:
        return frozenset(filter(None, (singularize_head(w) for w in self._stop_raw)))

    @cached_property
    def _object_synonyms(self) -> dict[str, str]:
        return _resolve_chains(
            {singularize_head(k): singularize_head(v) for k, v in self._synonyms_raw.items()}
        )

    @classmethod
    def from_files(
        cls, synonyms_path: str | Path | None = None, stoplist_path: str | Path | None = None
    ) -> Normalizer:
        """Load a synonym map (TSV `from<TAB>to` or JSON object) and a stop-list (one per line)."""
        synonyms = read_synonyms(synonyms_path) if synonyms_path else None
        stoplist = read_stoplist(stoplist_path) if stoplist_path else None
        return cls(synonyms, stoplist)

    def objects(self, tags: Iterable[str]) -> list[str]:
        """Canonical object tags, deduplicated in first-seen order, stop-listed nouns dropped."""
        out = []
        for tag in tags:
            tag = singularize_head(clean(tag)) if tag else ""
            tag = self._object_synonyms.get(tag, tag)
            if tag and tag not in self.stoplist and tag.rpartition(" ")[2] not in self.stoplist:
                out.append(tag)
        return list(dict.fromkeys(out))

    def attributes(self, tags: Iterable[str]) -> list[str]:
        """Canonical attribute tags (cleaned, synonyms applied), deduplicated, first seen first."""
        out = []
        for tag in tags:
            tag = clean(tag) if tag else ""
            tag = self._attribute_synonyms.get(tag, tag)
            if tag:
                out.append(tag)
        return list(dict.fromkeys(out))


def _resolve_chains(mapping: dict[str, str]) -> dict[str, str]:
    """Follow a -> b -> c so every value is final (normalizing stays idempotent); refuse cycles."""
    resolved = {}
    for key, value in mapping.items():
        if not key:
            continue
        seen = {key}
        while value in mapping and mapping[value] != value:
            if value in seen:
                raise TagparseError(
                    f"synonym map has a cycle through {key!r}; break it in the file"
                )
            seen.add(value)
            value = mapping[value]
        if not value:
            raise TagparseError(f"synonym {key!r} maps to an empty tag; give it a real target")
        if value != key:
            resolved[key] = value
    return resolved


def read_synonyms(path: str | Path) -> dict[str, str]:
    """Read a synonym map: a JSON object, or TSV lines `from<TAB>to` (`#` starts a comment)."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise TagparseError(
                f"{path}: invalid JSON at line {e.lineno} ({e.msg}); "
                'expected an object like {"guy": "man"}'
            ) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise TagparseError(f'{path}: expected a JSON object of strings like {{"guy": "man"}}')
        return data
    synonyms = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) != 2 or not all(parts):
            raise TagparseError(f"{path}:{lineno}: expected `from<TAB>to`, got {line!r}")
        synonyms[parts[0]] = parts[1]
    return synonyms


def read_stoplist(path: str | Path) -> set[str]:
    """Read a stop-list file: one noun per line, `#` starts a comment."""
    path = Path(path)
    return set(_read_word_lines(_read_text(path).splitlines(), str(path)))


def _read_word_lines(lines: Iterable[str], source: str) -> list[str]:
    words = []
    for lineno, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if line and not clean(line):
            raise TagparseError(f"{source}:{lineno}: {line!r} is empty after normalization")
        if line:
            words.append(line)
    return words


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TagparseError(f"{path}: no such file; check the path") from None
    except UnicodeDecodeError as e:
        raise TagparseError(f"{path}: not UTF-8 (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise TagparseError(f"{path}: cannot read ({e.strerror})") from None
