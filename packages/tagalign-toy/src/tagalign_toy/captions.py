"""ToyShapes captions: alt-text-like descriptions of a scene with synonyms, counts, relations,
web prefixes and suffixes, a dropped real object or an added ghost shape, and (at a noisy
caption level, `caption_noise`) colours left out or changed and distractor words.

`write_caption` records beside the caption what it truly says, the gold tags the tag parsers are
scored against. Caption ground truth (what `gold.jsonl` records and the tests check):
- `objects` = the canonical shape names the caption mentions + the background it names (if any);
- `attributes` = the canonical colours and sizes the caption attaches to those shapes;
- a caption may *drop* one real object (`dropped`) and may *add* one shape that is not in the image
  (`extra`) — the alt-text noise real captions have. Therefore, for every caption:
  `mentioned shapes == (scene shapes - dropped) | extra`, `dropped <= scene shapes`, `extra` is
  disjoint from the scene shapes, and every scene object keeps at least `MIN_VISIBLE` of its pixels
  in the masks despite overlaps.
"""

from __future__ import annotations

import numpy as np

from tagalign_toy.caption_noise import (
    BASE_GHOST_SHAPE,
    BASE_MISSING_COLOUR,
    CLEAN,
    CaptionDraws,
    CaptionNoise,
    add_distractors,
    distractor_phrases,
)
from tagalign_toy.scene import COLOURS, SHAPES, SIZES, Scene, ShapeObject

SHAPE_SYNONYMS = {
    "circle": ["disc", "dot"],
    "square": ["block"],
    "cross": ["plus sign"],
    "diamond": ["rhombus"],
    "triangle": [],
    "star": [],
}
COLOUR_SYNONYMS = {
    "red": ["crimson"],
    "purple": ["violet"],
    "yellow": ["golden"],
    "green": [],
    "blue": [],
    "white": [],
}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "big": ["big", "large", "huge"]}
BACKGROUND_PHRASES = {
    "grass": ["on the grass", "on grass", "in the grass"],
    "sky": ["in the sky", "against the sky", "up in the sky"],
    "sand": ["on the sand", "over sand", "on sand"],
}
PREFIXES = [
    "",
    "",
    "",
    "",
    "a photo of ",
    "stock photo: ",
    "picture of ",
    "close-up of ",
    "vector illustration of ",
    "image may contain: ",
]
SUFFIXES = ["", "", "", "", " - free hd wallpaper", ", high quality", " #shapes", " (2019)"]
RELATIONS = {
    "left": "to the left of",
    "right": "to the right of",
    "above": "above",
    "below": "below",
    "near": "next to",
}
NUMBER_WORDS = {2: "two", 3: "three"}


def _relation(a: ShapeObject, b: ShapeObject) -> str:
    dx, dy = b.cx - a.cx, b.cy - a.cy
    if max(abs(dx), abs(dy)) < 20:
        return RELATIONS["near"]
    if abs(dx) >= abs(dy):
        return RELATIONS["left" if dx > 0 else "right"]
    return RELATIONS["above" if dy > 0 else "below"]


def _phrase(
    rng: np.random.Generator,
    group: list[ShapeObject],
    said: set[str],
    draws: CaptionDraws | None = None,
) -> tuple[str, str | None]:
    """Noun phrase for one object or a group of identical ones ("two yellow stars") and the
    colour it names; `draws` (a real object's phrase at a noisy level) may drop or change it."""
    obj = group[0]
    words = []
    if rng.random() < 0.6:
        words.append(str(rng.choice(SIZE_WORDS[obj.size])))
        said.add(obj.size)
    colour = None
    if rng.random() < 1 - BASE_MISSING_COLOUR:
        options = [obj.colour, *COLOUR_SYNONYMS[obj.colour]]
        spoken = (obj.colour, str(rng.choice(options, p=_favour_first(len(options)))))
        if draws is not None:
            spoken = draws.colour(*spoken)
        if spoken is not None:
            colour, word = spoken
            words.append(word)
            said.add(colour)
    options = [obj.shape, *SHAPE_SYNONYMS[obj.shape]]
    noun = str(rng.choice(options, p=_favour_first(len(options))))
    if len(group) > 1:
        noun = noun + "s" if not noun.endswith("s") else noun + "es"
        return " ".join([NUMBER_WORDS[len(group)], *words, noun]), colour
    article = "an" if (words or [noun])[0][0] in "aeiou" else "a"
    return " ".join([article, *words, noun]), colour


def _favour_first(n: int) -> list[float]:
    """The canonical word 80% of the time, synonyms share the rest."""
    return [1.0] if n == 1 else [0.8] + [0.2 / (n - 1)] * (n - 1)


def write_caption(
    scene: Scene,
    rng: np.random.Generator,
    noise: CaptionNoise = CLEAN,
    noise_rng: np.random.Generator | None = None,
) -> None:
    """Fill `scene.caption`, `scene.tags`, `scene.dropped`, `scene.extra` and `scene.mentions`
    (see module doc). A noisy `noise` level draws its changes from `noise_rng` only, so `rng`
    advances exactly as at the clean level (and the image drawn after it stays the same)."""
    draws = None
    if not noise.is_clean:
        assert noise_rng is not None, "a noisy caption level needs its own random stream"
        draws = CaptionDraws(noise, noise_rng, {o.colour for o in scene.objects})
    groups: dict[tuple[str, str, str], list[ShapeObject]] = {}
    for obj in scene.objects:
        groups.setdefault((obj.shape, obj.colour, obj.size), []).append(obj)
    mentioned = list(groups.values())
    rng.shuffle(mentioned)
    dropped: list[str] = []
    if len(mentioned) >= 2 and rng.random() < 0.15:
        gone = mentioned.pop()
        remaining = {g[0].shape for g in mentioned}
        dropped = [] if gone[0].shape in remaining else [gone[0].shape]
    extra: list[str] = []
    absent = [s for s in SHAPES if s not in {o.shape for o in scene.objects}]
    if rng.random() < BASE_GHOST_SHAPE:
        extra = [_ghost(rng, absent, mentioned)]
    attributes: set[str] = set()
    phrases, scene.mentions = [], []
    for g in mentioned:
        real = not (extra and g is mentioned[-1])
        phrase, colour = _phrase(rng, g, attributes, draws if real else None)
        phrases.append(phrase)
        if real:
            scene.mentions.append({"shape": g[0].shape, "colour": g[0].colour, "said": colour})
    if len(phrases) == 1:
        body = phrases[0]
    elif len(phrases) == 2 and rng.random() < 0.6 and not extra:
        body = f"{phrases[0]} {_relation(mentioned[0][0], mentioned[1][0])} {phrases[1]}"
    else:
        body = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    if not extra and draws is not None and draws.extra_ghost():
        # a level's own ghost, drawn and phrased from its stream (the main one stays as it was)
        extra = [_ghost(draws.rng, absent, mentioned)]
        body += " and " + _phrase(draws.rng, mentioned[-1], attributes)[0]
    objects = {g[0].shape for g in mentioned}
    if rng.random() < 0.65:
        place = str(rng.choice(BACKGROUND_PHRASES[scene.background]))
        body = f"{place}, {body}" if rng.random() < 0.2 else f"{body} {place}"
        objects.add(scene.background)
    caption = str(rng.choice(PREFIXES)) + body + str(rng.choice(SUFFIXES))
    if draws is not None:
        phrases = distractor_phrases(draws.rng, noise.distractor_words)
        caption = add_distractors(caption, phrases, draws.rng)
    scene.caption = caption[0].upper() + caption[1:] if rng.random() < 0.7 else caption
    scene.tags = {"objects": sorted(objects), "attributes": sorted(attributes)}
    scene.dropped, scene.extra, scene.noise = dropped, extra, noise.name


def _ghost(rng: np.random.Generator, absent: list[str], mentioned: list) -> str:
    """Append to `mentioned` a shape that is not in the image, in a random colour and size."""
    ghost = str(rng.choice(absent))
    colour, size = str(rng.choice(list(COLOURS))), str(rng.choice(list(SIZES)))
    mentioned.append([ShapeObject(ghost, colour, size, 0, 0, 0, 0)])
    return ghost


def describe(scene: Scene) -> str:
    """A plain full description ("a big red circle and a small blue star on the grass"): the
    `pretrain` split's captions, which always name every object with its size and colour."""
    phrases = [f"a {o.size} {o.colour} {o.shape}" for o in scene.objects]
    body = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{body} {BACKGROUND_PHRASES[scene.background][0]}"
