"""Caption quality as an axis of the world: how much of a caption is alt-text junk, how often a
present object's colour goes unsaid, how often the caption names what is not there (issue 22).

TagAlign's argument is about noisy web captions: a colour word is a small part of a long
alt-text's embedding, while a tag isolates it. The toy captions of version 2 are short and name
nearly everything, so the contrastive loss already sees each colour. A `CaptionNoise` level makes
them worse along three separate dials, always from a random stream of its own, so that

- the images (and the clean caption a noisy one is derived from) stay byte-identical across
  levels: a level changes the words, never the pixels;
- `CLEAN` draws nothing at all from that stream and reproduces version 2's captions exactly
  (existing worlds, results and caches stay valid).

The far end is our own reading of CC12M alt-text (e.g. "IMG_0423.jpg | red mug 12 oz, free
shipping - buy now"), not a measurement: about 20 words (the length the CC12M paper reports,
twice CC3M's), of which about a fifth name what is visible. FACTUAL's human region captions
(bench/bench_toy_claims.py prints their statistics beside the levels') are the clean end: short,
nearly all of their words visual.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

import numpy as np

#: Version 2's own noise (what `WorldSpec()` has always generated), drawn from the sample's main
#: stream; a level adds to it from its own stream.
BASE_MISSING_COLOUR = 0.15
BASE_GHOST_SHAPE = 0.08


@dataclass(frozen=True)
class CaptionNoise:
    """One caption-quality level.

    - `distractor_words`: mean number of non-visual alt-text words added (file names, shop words,
      dates, sizes), as whole phrases before or after the description;
    - `missing_colour`: probability that a phrase naming a real object leaves its colour unsaid
      (version 2 already leaves it out 15% of the time: `CLEAN` has 0.15);
    - `wrong_colour`: probability that a phrase that names a colour names one that is in no object
      of the image;
    - `ghost_shape`: probability that a caption names a shape that is not in the image (version 2:
      0.08).
    """

    name: str
    distractor_words: float = 0.0
    missing_colour: float = BASE_MISSING_COLOUR
    wrong_colour: float = 0.0
    ghost_shape: float = BASE_GHOST_SHAPE

    def __post_init__(self) -> None:
        if self.missing_colour < BASE_MISSING_COLOUR or self.ghost_shape < BASE_GHOST_SHAPE:
            raise ValueError(
                f"caption noise {self.name!r}: missing_colour >= {BASE_MISSING_COLOUR} and "
                f"ghost_shape >= {BASE_GHOST_SHAPE} (version 2's own noise is the floor)"
            )

    @property
    def digest(self) -> str:
        """12 hex digits of the parameters: a changed level never shares a cache with the old."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def is_clean(self) -> bool:
        return self == CLEAN


CLEAN = CaptionNoise("clean")
LEVELS = {
    level.name: level
    for level in (
        CLEAN,
        CaptionNoise(
            "mid", distractor_words=4, missing_colour=0.35, wrong_colour=0.1, ghost_shape=0.15
        ),
        CaptionNoise(
            "far", distractor_words=10, missing_colour=0.55, wrong_colour=0.25, ghost_shape=0.25
        ),
    )
}


def level(name: str) -> CaptionNoise:
    """The named level; a KeyError names the known ones."""
    if name not in LEVELS:
        raise KeyError(f"unknown caption noise level {name!r}; choose from {', '.join(LEVELS)}")
    return LEVELS[name]


# ---------------------------------------------------------------- distractor text

#: Alt-text that says nothing about what is visible: no shape, colour, size or background word.
_SHOP = (
    "free shipping",
    "buy now",
    "best price",
    "in stock",
    "sale",
    "new arrival",
    "limited edition",
    "add to cart",
    "wholesale",
    "official store",
    "customer reviews",
    "order online today",
    "gift idea for him",
    "home decor",
    "premium quality product",
    "royalty free stock image",
    "editorial use only",
    "all rights reserved",
    "click to enlarge",
    "download",
)
_MONTHS = ("January", "March", "May", "June", "August", "October", "December")


def _file_name(rng: np.random.Generator) -> str:
    stem = str(rng.choice(["IMG", "DSC", "photo", "image", "P"]))
    ext = str(rng.choice(["jpg", "JPG", "jpeg", "png"]))
    return f"{stem}_{int(rng.integers(0, 10000)):04d}.{ext}"


def _date(rng: np.random.Generator) -> str:
    year = int(rng.integers(2008, 2022))
    if rng.random() < 0.5:
        return f"{year}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
    return f"{rng.choice(_MONTHS)} {year}"


def _dimensions(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return (
            f"{int(rng.choice([640, 800, 1024, 1280, 1920]))}x{int(rng.choice([480, 600, 1080]))}"
        )
    return f"{int(rng.integers(4, 40))} x {int(rng.integers(4, 40))} inches"


def _phrase(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.2:
        return _file_name(rng)
    if kind < 0.35:
        return _date(rng)
    if kind < 0.5:
        return _dimensions(rng)
    return str(rng.choice(_SHOP))


def distractor_phrases(rng: np.random.Generator, mean_words: float) -> list[str]:
    """Alt-text phrases adding up to about `mean_words` words (drawn in 0.5-1.5× the mean)."""
    if mean_words <= 0:
        return []
    budget = float(rng.uniform(0.5, 1.5)) * mean_words
    phrases: list[str] = []
    while sum(len(p.split()) for p in phrases) < budget:
        phrases.append(_phrase(rng))
    return phrases


def add_distractors(body: str, phrases: list[str], rng: np.random.Generator) -> str:
    """Put each phrase before or after the description, joined as alt-text joins them."""
    before, after = [], []
    for phrase in phrases:
        (before if rng.random() < 0.4 else after).append(phrase)
    head = " | ".join(before)
    tail = ", ".join(after)
    text = f"{head} | {body}" if head else body
    return f"{text} - {tail}" if tail else text


# ---------------------------------------------------------------- measuring a caption

_WORD = re.compile(r"[a-z]+")


def visual_words() -> frozenset[str]:
    """Every word the generator uses for what is visible: shapes, colours, sizes, numbers and
    backgrounds with their synonyms (plural forms count through a trailing s/es)."""
    from tagalign_toy import captions as captioning
    from tagalign_toy import scene as scenes

    words = set(scenes.SHAPES) | set(scenes.COLOURS) | set(scenes.BACKGROUNDS)
    for table in (captioning.SHAPE_SYNONYMS, captioning.COLOUR_SYNONYMS, captioning.SIZE_WORDS):
        for options in table.values():
            for option in options:
                words.update(option.split())
    words.update(captioning.NUMBER_WORDS.values())
    return frozenset(words)


def visual_word_share(caption: str, vocabulary: frozenset[str] | None = None) -> float:
    """The share of a caption's words that name something visible (0 for a caption without
    words); the same measure reads a FACTUAL caption against its scene graph's words."""
    vocabulary = vocabulary if vocabulary is not None else visual_words()
    words = _WORD.findall(caption.lower())
    if not words:
        return 0.0
    hits = sum(1 for w in words if w in vocabulary or _singular(w) in vocabulary)
    return hits / len(words)


def _singular(word: str) -> str:
    if word.endswith("es") and word[:-2] in {"cross"}:
        return word[:-2]
    return word.removesuffix("s")


# ---------------------------------------------------------------- one caption's draws


class CaptionDraws:
    """A level's decisions for one caption, from the caption's own noise stream (never from the
    sample's main stream, which would change the pixels drawn after the caption)."""

    def __init__(self, noise: CaptionNoise, rng: np.random.Generator, present: set[str]):
        self.noise, self.rng = noise, rng
        self.absent_colours = sorted(set(_colours()) - present)
        # version 2 already left the colour out with BASE_MISSING_COLOUR and named a ghost with
        # BASE_GHOST_SHAPE; these are the extra chances that bring each up to the level's rate
        self.drop = 1 - (1 - noise.missing_colour) / (1 - BASE_MISSING_COLOUR)
        self.ghost = (noise.ghost_shape - BASE_GHOST_SHAPE) / (1 - BASE_GHOST_SHAPE)

    def colour(self, true_colour: str, word: str) -> tuple[str, str] | None:
        """(colour, word) the caption says for an object whose colour version 2 would have said
        as `word`: dropped, replaced by an absent colour, or kept."""
        if self.rng.random() < self.drop:
            return None
        if self.absent_colours and self.rng.random() < self.noise.wrong_colour:
            wrong = str(self.rng.choice(self.absent_colours))
            return wrong, wrong
        return true_colour, word

    def extra_ghost(self) -> bool:
        """Whether a caption without version 2's ghost shape gets one at this level."""
        return bool(self.rng.random() < self.ghost)


def _colours() -> tuple[str, ...]:
    from tagalign_toy.scene import COLOURS  # imported here: scene imports this module

    return tuple(COLOURS)
