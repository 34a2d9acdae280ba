"""NLTK backend, the TagAlign paper's baseline: POS tags + a regexp chunk grammar.

Nouns at the end of each noun-phrase chunk are an object (consecutive nouns stay one compound
tag: "tennis player"); every adjective is an attribute. The POS tagger is NLTK's standard
`averaged_perceptron_tagger_eng` when its data is installed, otherwise a perceptron model this
project trains itself (`scripts/train_nltk_tagger.py`, see docs/nltk-tagger.md) and ships as
package data, so the backend works offline without `nltk.download`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import nltk
from nltk.chunk import RegexpParser
from nltk.tag.perceptron import PerceptronTagger
from nltk.tokenize import TreebankWordTokenizer

from tagparse.errors import TagparseError
from tagparse.normalize import Normalizer
from tagparse.parsing import ParseResult, ParserSpec

RULES_VERSION = "1"
GRAMMAR = r"NP: {<JJ.*|VBN>*<NN.*>+}"
SHIPPED_TAGGER = Path(str(resources.files("tagparse").joinpath("data/nltk_tagger_eng.json.gz")))
STANDARD_TAGGER = "averaged_perceptron_tagger_eng"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TOKENIZER = TreebankWordTokenizer()


def create(model: str | None = None, normalizer: Normalizer | None = None) -> NltkBackend:
    """Build the backend. `model`: None/"auto" (standard data if installed, else the shipped
    tagger), "nltk" (standard data only), "tagparse" (the shipped tagger), or a model file path."""
    normalizer = normalizer or Normalizer()
    source = resolve_tagger(model)
    return NltkBackend(load_tagger(source), _spec(source, normalizer), normalizer)


def spec(model: str | None = None, normalizer: Normalizer | None = None) -> ParserSpec:
    """The parser fingerprint without loading the tagger weights."""
    return _spec(resolve_tagger(model), normalizer or Normalizer())


def resolve_tagger(model: str | None) -> str | Path:
    """STANDARD_TAGGER when NLTK's data is wanted and installed, else a model file path."""
    if model in (None, "auto", "nltk"):
        if _standard_installed():
            return STANDARD_TAGGER
        if model == "nltk":
            raise TagparseError(
                f"NLTK's {STANDARD_TAGGER} data is not installed; run "
                f"`python -m nltk.downloader {STANDARD_TAGGER}` or omit --model"
            )
        return SHIPPED_TAGGER
    path = SHIPPED_TAGGER if model == "tagparse" else Path(model)
    if not path.is_file():
        raise TagparseError(
            f"{path}: no such tagger model; pass --model auto, nltk, tagparse "
            "or a file written by scripts/train_nltk_tagger.py"
        )
    return path


def load_tagger(source: str | Path) -> PerceptronTagger:
    """A PerceptronTagger from NLTK's data or from a tagparse model file (no network either way)."""
    if source == STANDARD_TAGGER:
        return PerceptronTagger()
    try:
        with gzip.open(source, "rt", encoding="utf-8") as f:
            payload = json.load(f)
        params = (payload["weights"], payload["tagdict"], payload["classes"])
    except (OSError, ValueError, KeyError) as e:
        raise TagparseError(
            f"{source}: not a tagger model written by scripts/train_nltk_tagger.py "
            f"({type(e).__name__}); re-create it with that script"
        ) from None
    tagger = PerceptronTagger(load=False)
    tagger.decode_json_params(params)
    return tagger


def _standard_installed() -> bool:
    try:
        nltk.data.find(f"taggers/{STANDARD_TAGGER}/")
    except LookupError:
        return False
    return True


def _spec(source: str | Path, normalizer: Normalizer) -> ParserSpec:
    if source == STANDARD_TAGGER:
        model = f"{STANDARD_TAGGER}@nltk{nltk.__version__}"
    else:
        model = f"tagparse-perceptron@{hashlib.sha256(Path(source).read_bytes()).hexdigest()[:8]}"
    return ParserSpec(
        backend="nltk",
        normalizer_version=normalizer.version,
        model=model,
        params={"rules": RULES_VERSION, "grammar": GRAMMAR},
    )


class NltkBackend:
    """Captions -> objects/attributes with a POS tagger and a noun-phrase chunk grammar."""

    def __init__(self, tagger: PerceptronTagger, spec: ParserSpec, normalizer: Normalizer):
        self.tagger = tagger
        self.spec = spec
        self.normalizer = normalizer
        self.chunker = RegexpParser(GRAMMAR)

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        return [self.parse(c) for c in captions]

    def parse(self, caption: str) -> ParseResult:
        """Parse one caption; failures are returned, never raised."""
        if not caption or not caption.strip():
            return ParseResult.failure("empty caption")
        try:
            objects, attributes = self.extract_tags(caption)
        except Exception as e:  # noqa: BLE001 - reported per caption, the run continues
            return ParseResult.failure(f"NLTK failed: {type(e).__name__}: {e}")
        return ParseResult(self.normalizer.objects(objects), self.normalizer.attributes(attributes))

    def extract_tags(self, caption: str) -> tuple[list[str], list[str]]:
        """Raw object and attribute tags of one caption, in caption order."""
        objects, attributes = [], []
        for tokens in tokenize(caption):
            tagged = self.tagger.tag(tokens)
            attributes.extend(w for w, tag in tagged if tag.startswith("JJ"))
            for chunk in self.chunker.parse(tagged).subtrees(lambda t: t.label() == "NP"):
                nouns = _trailing_nouns(chunk.leaves())
                if nouns:
                    objects.append(" ".join(nouns))
        return objects, attributes


def tokenize(caption: str) -> list[list[str]]:
    """Treebank tokens of each sentence of a caption (as the training script tokenizes)."""
    return [
        tokens
        for sentence in _SENTENCE_END.split(caption.strip())
        if (tokens := _TOKENIZER.tokenize(sentence))
    ]


def _trailing_nouns(leaves: list[tuple[str, str]]) -> list[str]:
    nouns: list[str] = []
    for word, tag in reversed(leaves):
        if not tag.startswith("NN"):
            break
        nouns.append(word)
    return nouns[::-1]
