"""ToyShapes: a seeded synthetic world of coloured, patterned shapes on textured backgrounds, with
noisy captions (version 2: upright shapes with per-shape surface patterns, bigger sizes, and the
`single` and `pairs` splits; see docs/toy-world.md).

Every sample is drawn from its own random stream `(seed, split, index)`, so a sample never depends
on how many others were generated, and the same seed always yields the same bytes (JPEGs at a fixed
quality without metadata, tar members with fixed mtime/owner, palette PNGs without text chunks).

Caption ground truth (what `gold.jsonl` records and the tests check):
- `objects` = the canonical shape names the caption mentions + the background it names (if any);
- `attributes` = the canonical colours and sizes the caption attaches to those shapes;
- a caption may *drop* one real object (`dropped`) and may *add* one shape that is not in the image
  (`extra`) — the alt-text noise real captions have. Therefore, for every caption:
  `mentioned shapes == (scene shapes - dropped) | extra`, `dropped <= scene shapes`, `extra` is
  disjoint from the scene shapes, and every scene object keeps at least `MIN_VISIBLE` of its pixels
  in the masks despite overlaps.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import tarfile
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tagalign_eval import vis
from tqdm import tqdm

from tagalign_toy.caption_noise import (
    BASE_GHOST_SHAPE,
    BASE_MISSING_COLOUR,
    CLEAN,
    CaptionDraws,
    CaptionNoise,
    add_distractors,
    distractor_phrases,
)
from tagalign_toy.caption_noise import level as noise_level

TOYSHAPES_VERSION = "2"
IMAGE_SIZE = 96
MIN_VISIBLE = 0.5
JPEG_QUALITY = 92

SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond")
COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 175, 60),
    "blue": (40, 70, 215),
    "yellow": (235, 210, 40),
    "purple": (140, 50, 170),
    "white": (240, 240, 240),
}
SIZES = {"small": (13, 17), "big": (21, 27)}  # radius range in pixels (version 1: 9-12, 17-23)
BACKGROUNDS = ("grass", "sky", "sand")
#: Version 2: objects stand upright, as objects in photos mostly do, each shape in its canonical
#: pose (square axis-aligned, triangle and star pointing up, diamond tall) tilted by at most
#: `TILT` radians. Version 1 rotated them freely, and a from-scratch toy CLIP then never learned
#: to name shapes (bench/RESULTS.md, issue 14).
UPRIGHT = {
    "circle": 0.0,
    "square": np.pi / 4,
    "triangle": -np.pi / 2,
    "star": -np.pi / 2,
    "cross": 0.0,
    "diamond": np.pi / 2,
}
TILT = 0.17

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
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2, "pretrain": 3, "single": 4, "pairs": 5}


@dataclass
class ShapeObject:
    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    radius: float
    angle: float

    @property
    def attr_class(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    key: str
    background: str
    objects: list[ShapeObject]
    caption: str = ""
    tags: dict[str, list[str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    #: one `{"shape", "colour", "said"}` per caption phrase about a real object: its true colour
    #: and the colour the caption names for it (None: left unsaid)
    mentions: list[dict] = field(default_factory=list)
    noise: str = CLEAN.name

    def gold(self) -> dict:
        """The JSON record of `gold.jsonl`: caption, ground-truth tags and the scene (and, at a
        noisy caption level, the level and every real object's mention; the clean level's record
        is version 2's, byte for byte)."""
        noisy = {} if self.noise == CLEAN.name else {"noise": self.noise, "mentions": self.mentions}
        return noisy | {
            "key": self.key,
            "caption": self.caption,
            "objects": self.tags["objects"],
            "attributes": self.tags["attributes"],
            "dropped": self.dropped,
            "extra": self.extra,
            "background": self.background,
            "scene": [asdict(o) for o in self.objects],
        }


def shape_classes() -> list[str]:
    """Class list of the `toyshapes` benchmark (index 0 is the background)."""
    return ["background", *SHAPES]


def attribute_classes() -> list[str]:
    """Class list of `toyshapes-attr`: every colour-shape pair, colour-major (0 is background)."""
    return ["background", *(f"{c} {s}" for c in COLOURS for s in SHAPES)]


# ---------------------------------------------------------------- scene sampling


def sample_scene(rng: np.random.Generator, key: str) -> Scene:
    """Draw 1-3 objects (sometimes a duplicate shape+colour) on one background."""
    background = str(rng.choice(BACKGROUNDS))
    n = int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25]))
    objects: list[ShapeObject] = []
    for i in range(n):
        if i > 0 and rng.random() < 0.2:
            shape, colour = objects[0].shape, objects[0].colour
        else:
            shape, colour = str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS)))
        size = str(rng.choice(list(SIZES)))
        placed = _place(rng, shape, colour, size, objects)
        if placed is not None:
            objects.append(placed)
    return Scene(key=key, background=background, objects=objects)


def _place(
    rng: np.random.Generator, shape: str, colour: str, size: str, placed: list[ShapeObject]
) -> ShapeObject | None:
    """A position whose small overlap with earlier objects leaves every object mostly visible,
    or None when 50 tries find no room (the object is then left out of the scene)."""
    lo, hi = SIZES[size]
    for _ in range(50):
        r = float(rng.uniform(lo, hi))
        cx, cy = (float(v) for v in rng.uniform(r, IMAGE_SIZE - r, size=2))
        if all(np.hypot(cx - o.cx, cy - o.cy) > 0.9 * (r + o.radius) for o in placed):
            angle = UPRIGHT[shape] + float(rng.uniform(-TILT, TILT))
            return ShapeObject(shape, colour, size, cx, cy, r, angle)
    return None


# ---------------------------------------------------------------- rendering


def _polygon(obj: ShapeObject) -> list[tuple[float, float]] | None:
    """Vertices of the shape's outline, or None for the circle."""
    r, a = obj.radius, obj.angle
    if obj.shape == "circle":
        return None
    if obj.shape == "star":
        radii = [r if k % 2 == 0 else 0.45 * r for k in range(10)]
        angles = [a + k * np.pi / 5 for k in range(10)]
    elif obj.shape == "cross":
        w = 0.35
        pts = [
            (w, 1),
            (w, w),
            (1, w),
            (1, -w),
            (w, -w),
            (w, -1),
            (-w, -1),
            (-w, -w),
            (-1, -w),
            (-1, w),
            (-w, w),
            (-w, 1),
        ]
        c, s = np.cos(a), np.sin(a)
        return [(obj.cx + r * (x * c - y * s), obj.cy + r * (x * s + y * c)) for x, y in pts]
    else:
        corners = {"square": 4, "triangle": 3, "diamond": 4}[obj.shape]
        angles = [a + 2 * np.pi * k / corners for k in range(corners)]
        radii = [r] * corners
        if obj.shape == "square":
            radii = [r * 0.95] * 4
        if obj.shape == "diamond":
            radii = [r, 0.55 * r, r, 0.55 * r]
    return [(obj.cx + q * np.cos(t), obj.cy + q * np.sin(t)) for q, t in zip(radii, angles)]


def object_mask(obj: ShapeObject) -> np.ndarray:
    """Boolean H×W mask of one object (before occlusion)."""
    canvas = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    draw = ImageDraw.Draw(canvas)
    poly = _polygon(obj)
    if poly is None:
        draw.ellipse(
            [obj.cx - obj.radius, obj.cy - obj.radius, obj.cx + obj.radius, obj.cy + obj.radius],
            fill=1,
        )
    else:
        draw.polygon(poly, fill=1)
    return np.asarray(canvas, dtype=bool)


def _smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a `cells`×`cells` random grid upsampled bicubically."""
    grid = Image.fromarray(rng.uniform(0, 255, (cells, cells)).astype(np.uint8))
    smooth = np.asarray(grid.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC), np.float32)
    return (smooth - 127.5) / 127.5


def _background(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Textured "stuff": streaky grass, cloudy sky, speckled rippled sand (H×W×3 float)."""
    h = w = IMAGE_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fine = rng.standard_normal((h, w)).astype(np.float32)
    if kind == "grass":
        streaks = np.repeat(rng.standard_normal((1, w)), h, axis=0) * 0.6 + fine
        base = np.array([70, 135, 45], np.float32)
        img = base + streaks[..., None] * np.array([14, 28, 10], np.float32)
    elif kind == "sky":
        t = (yy / h)[..., None]
        img = (
            np.array([90, 150, 230], np.float32) * (1 - t)
            + np.array([170, 205, 245], np.float32) * t
        )
        clouds = np.clip(_smooth_noise(rng, 8) * 1.6 - 0.7, 0, 1)[..., None]
        img = img * (1 - clouds) + 245 * clouds + fine[..., None] * 3
    else:
        ripples = np.sin(xx * 0.35 + 3 * _smooth_noise(rng, 5) + rng.uniform(0, 6))[..., None]
        img = np.array([215, 190, 135], np.float32) + ripples * 10 + fine[..., None] * 12
    return img


#: Version 2: every shape has its own surface pattern, as real object kinds have their own
#: textures (a zebra's stripes): dark cells of the pattern are the object's colour × PATTERN_SHADE.
#: Colour stays the attribute; the pattern belongs to the object class. Without it, a from-scratch
#: toy CLIP with 12-px patches did not learn to name shapes (bench/RESULTS.md, issue 14).
PATTERNS = {
    "circle": "plain",
    "square": "checks",
    "triangle": "horizontal stripes",
    "star": "dots",
    "cross": "vertical stripes",
    "diamond": "diagonal stripes",
}
PATTERN_PERIOD = 6
PATTERN_SHADE = 0.55


def surface_pattern(shape: str, rng: np.random.Generator) -> np.ndarray:
    """Boolean H×W map of the dark cells of `shape`'s pattern, at a random phase."""
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    dy, dx = (int(v) for v in rng.integers(0, PATTERN_PERIOD, 2))
    y, x, half = yy + dy, xx + dx, PATTERN_PERIOD // 2
    kind = PATTERNS[shape]
    if kind == "checks":
        return ((y // half) + (x // half)) % 2 == 0
    if kind == "horizontal stripes":
        return (y % PATTERN_PERIOD) < half
    if kind == "vertical stripes":
        return (x % PATTERN_PERIOD) < half
    if kind == "diagonal stripes":
        return ((x + y) % PATTERN_PERIOD) < half
    if kind == "dots":
        return (y % PATTERN_PERIOD - half) ** 2 + (x % PATTERN_PERIOD - half) ** 2 <= 2
    return np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)


def render(scene: Scene, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Draw the scene: RGB image, shape-class mask and attribute-class mask (uint8 index maps).

    Later objects occlude earlier ones; mask indices follow `shape_classes()` and
    `attribute_classes()`.
    """
    img = _background(rng, scene.background)
    shape_mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    attr_mask = np.zeros_like(shape_mask)
    attr_index = {name: i for i, name in enumerate(attribute_classes())}
    for obj in scene.objects:
        m = object_mask(obj)
        colour = np.array(COLOURS[obj.colour], np.float32) + rng.uniform(-18, 18, 3)
        shade = np.where(surface_pattern(obj.shape, rng)[m], PATTERN_SHADE, 1.0)[:, None]
        img[m] = colour * shade + rng.standard_normal((int(m.sum()), 1)).astype(np.float32) * 6
        shape_mask[m] = SHAPES.index(obj.shape) + 1
        attr_mask[m] = attr_index[obj.attr_class]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB"), shape_mask, attr_mask


# ---------------------------------------------------------------- captions


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


# ---------------------------------------------------------------- samples and splits


#: The third word of a sample's caption-noise stream `(seed, split, index, NOISE_STREAM)`.
NOISE_STREAM = 2


def make_sample(
    seed: int, split: str, index: int, noise: CaptionNoise = CLEAN
) -> tuple[Scene, Image.Image, np.ndarray, np.ndarray]:
    """One sample from its own random stream: captioned scene, image, shape mask, attribute mask.
    The caption's `noise` level draws from a second stream, so the image is the same at every
    level."""
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
    scene = sample_scene(rng, f"{split}{index:07d}")
    noise_rng = np.random.default_rng([seed, _SPLIT_IDS[split], index, NOISE_STREAM])
    write_caption(scene, rng, noise, noise_rng)
    image, shape_mask, attr_mask = render(scene, rng)
    return scene, image, shape_mask, attr_mask


def describe(scene: Scene) -> str:
    """A plain full description ("a big red circle and a small blue star on the grass"): the
    `pretrain` split's captions, which always name every object with its size and colour."""
    phrases = [f"a {o.size} {o.colour} {o.shape}" for o in scene.objects]
    body = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{body} {BACKGROUND_PHRASES[scene.background][0]}"


def make_pretrain_group(seed: int, index: int) -> list[tuple[str, Image.Image]]:
    """One sibling group of the toy CLIP's `pretrain` split: six (caption, image) pairs of one
    layout that differ only in their shapes, captioned by `describe`.

    The layout (a single object for even indices, a 1-3 object scene for odd ones) keeps its
    positions, sizes, colours, pixel noise and background; sibling k gives every object the shape
    k places after its own in `SHAPES`, so each object takes all six shapes across the group.
    Batched whole, siblings are negatives that only the object class tells apart. Without them a
    batch is separable by colour, size and background alone and a from-scratch CLIP never learns
    shapes (bench/RESULTS.md, issues 7 and 14). Not the TagAlign train split, as real CLIP's web
    data is not CC12M.
    """
    rng = np.random.default_rng([seed, _SPLIT_IDS["pretrain"], index])
    if index % 2 == 0:
        shape, colour = str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS)))
        obj = _place(rng, shape, colour, str(rng.choice(list(SIZES))), [])
        assert obj is not None  # an empty canvas always has room
        base = Scene(f"pretrain{index:07d}", str(rng.choice(BACKGROUNDS)), [obj])
    else:
        base = sample_scene(rng, f"pretrain{index:07d}")
    group = []
    for k in range(len(SHAPES)):
        objects = []
        for o in base.objects:
            shape = SHAPES[(SHAPES.index(o.shape) + k) % len(SHAPES)]
            angle = o.angle - UPRIGHT[o.shape] + UPRIGHT[shape]  # the same tilt
            objects.append(replace(o, shape=shape, angle=angle))
        scene = Scene(f"{base.key}-{k}", base.background, objects)
        pixels = np.random.default_rng([seed, _SPLIT_IDS["pretrain"], index, 1])
        group.append((describe(scene), render(scene, pixels)[0]))
    return group


def make_single_sample(seed: int, index: int) -> tuple[ShapeObject, str, Image.Image]:
    """One object on a background (the `single` split: zero-shot naming and classification).

    Shapes and colours cycle with the index (shape fastest), so every 36 consecutive samples hold
    each colour-shape pair once; size, place, tilt and background are drawn."""
    rng = np.random.default_rng([seed, _SPLIT_IDS["single"], index])
    shape, colour = SHAPES[index % len(SHAPES)], list(COLOURS)[index // len(SHAPES) % len(COLOURS)]
    background = str(rng.choice(BACKGROUNDS))
    obj = _place(rng, shape, colour, str(rng.choice(list(SIZES))), [])
    assert obj is not None  # an empty canvas always has room
    scene = Scene(key=f"single{index:07d}", background=background, objects=[obj])
    return obj, background, render(scene, rng)[0]


def make_pair_sample(seed: int, index: int) -> tuple[Scene, Image.Image, np.ndarray]:
    """The same shape twice, in two different colours (the `pairs` split: attribute
    localization, the paper's "cat" vs "black cat"). Returns the scene, image and attribute mask;
    "red circle" must cover the red circle and not the blue one."""
    rng = np.random.default_rng([seed, _SPLIT_IDS["pairs"], index])
    shape = str(rng.choice(SHAPES))
    colours = [str(c) for c in rng.choice(list(COLOURS), size=2, replace=False)]
    objects: list[ShapeObject] = []
    while len(objects) < 2:
        placed = _place(rng, shape, colours[len(objects)], str(rng.choice(list(SIZES))), objects)
        if placed is not None:
            objects.append(placed)
    scene = Scene(key=f"pairs{index:07d}", background=str(rng.choice(BACKGROUNDS)), objects=objects)
    image, _, attr_mask = render(scene, rng)
    return scene, image, attr_mask


def jpeg_bytes(image: Image.Image) -> bytes:
    """Deterministic JPEG: fixed quality and subsampling, no EXIF or other metadata."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return buf.getvalue()


def palette_png_bytes(mask: np.ndarray) -> bytes:
    """Palette PNG of class indices with VOC's colour map (index 255 = ignore)."""
    image = Image.fromarray(mask, "P")
    image.putpalette(vis.palette(256).reshape(-1).tolist())  # the evaluator's VOC colours
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class EncodedSample:
    """A sample as the bytes written to disk (what worker processes send back)."""

    gold: dict
    jpeg: bytes
    shape_png: bytes
    attr_png: bytes


def encode_sample(seed: int, split: str, index: int, captions: str = CLEAN.name) -> EncodedSample:
    scene, image, shape_mask, attr_mask = make_sample(seed, split, index, noise_level(captions))
    return EncodedSample(
        scene.gold(), jpeg_bytes(image), palette_png_bytes(shape_mask), palette_png_bytes(attr_mask)
    )


def encoded_samples(
    spec: WorldSpec, split: str, n: int, workers: int, desc: str, progress: bool
) -> Iterator[EncodedSample]:
    """Samples 0..n-1 in order; `workers` processes render them (order, hence bytes, unchanged)."""
    jobs = [(spec.seed, split, i, spec.captions) for i in range(n)]
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress)
    with bar, mp.get_context("spawn").Pool(workers) if workers > 1 else nullcontext() as pool:
        results = pool.imap(_encode_job, jobs, chunksize=32) if pool else map(_encode_job, jobs)
        for sample in results:
            bar.update()
            yield sample


def _encode_job(job: tuple[int, str, int, str]) -> EncodedSample:
    return encode_sample(*job)


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class WorldSpec:
    """What identifies a generated world; the cache key of everything derived from it."""

    seed: int = 0
    n_train: int = 4000
    n_val: int = 200
    shard_size: int = 1000
    n_single: int = 360
    n_pairs: int = 200
    #: the caption-quality level (`caption_noise.LEVELS`); only captions differ between levels
    captions: str = CLEAN.name

    def __post_init__(self) -> None:
        noise_level(self.captions)  # a KeyError naming the known levels

    @property
    def key(self) -> str:
        """The world's folder name and cache key; a noisy level adds its name and parameters'
        digest (the clean level's key is version 2's, so its worlds and caches stay valid)."""
        noise = noise_level(self.captions)
        suffix = "" if noise.is_clean else f"-c{noise.name}-{noise.digest}"
        return (
            f"v{TOYSHAPES_VERSION}-s{self.seed}-t{self.n_train}-v{self.n_val}-sh{self.shard_size}"
            f"-o{self.n_single}-p{self.n_pairs}{suffix}"
        )


def write_train(root: Path, spec: WorldSpec, workers: int = 1, progress: bool = True) -> list[Path]:
    """Webdataset shards `train/NNNNN.tar` (`KEY.jpg` + `KEY.txt`) and `train/gold.jsonl`."""
    out = root / "train"
    out.mkdir(parents=True, exist_ok=True)
    shards: list[Path] = []
    samples = encoded_samples(spec, "train", spec.n_train, workers, "world: train", progress)
    with open(out / "gold.jsonl", "w", encoding="utf-8") as gold:
        for start in range(0, spec.n_train, spec.shard_size):
            shards.append(out / f"{start // spec.shard_size:05d}.tar")
            with tarfile.open(shards[-1], "w", format=tarfile.USTAR_FORMAT) as tar:
                for sample in islice(samples, spec.shard_size):
                    key = sample.gold["key"]
                    _add_member(tar, f"{key}.jpg", sample.jpeg)
                    _add_member(tar, f"{key}.txt", sample.gold["caption"].encode("utf-8"))
                    gold.write(json.dumps(sample.gold) + "\n")
    return shards


VOC_NAME = "ToyShapes"
PAIRS_VOC_NAME = "ToyShapesPairs"
SHAPE_MASK_DIR = "SegmentationClass"
ATTR_MASK_DIR = "SegmentationClassAttr"
SINGLE_DIR = "single"
CAPTIONS_FILE = "captions.jsonl"


def write_val(root: Path, spec: WorldSpec, workers: int = 1, progress: bool = True) -> Path:
    """VOC layout under `VOCdevkit/ToyShapes/`: JPEGImages, two palette mask folders, val.txt,
    class lists (`shapes.txt`, `attribute_shapes.txt`), `gold.jsonl`, and `captions.jsonl`
    (`{"image", "caption"}` per line: the val images with their alt-text, for retrieval)."""
    base = root / "VOCdevkit" / VOC_NAME
    for sub in ("JPEGImages", SHAPE_MASK_DIR, ATTR_MASK_DIR, "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    keys = []
    with (
        open(base / "gold.jsonl", "w", encoding="utf-8") as gold,
        open(base / CAPTIONS_FILE, "w", encoding="utf-8") as captions,
    ):
        for sample in encoded_samples(spec, "val", spec.n_val, workers, "world: val", progress):
            key = sample.gold["key"]
            (base / "JPEGImages" / f"{key}.jpg").write_bytes(sample.jpeg)
            (base / SHAPE_MASK_DIR / f"{key}.png").write_bytes(sample.shape_png)
            (base / ATTR_MASK_DIR / f"{key}.png").write_bytes(sample.attr_png)
            gold.write(json.dumps(sample.gold) + "\n")
            keys.append(key)
            pair = {"image": f"JPEGImages/{key}.jpg", "caption": sample.gold["caption"]}
            captions.write(json.dumps(pair) + "\n")
    (base / "ImageSets/Segmentation/val.txt").write_text("\n".join(keys) + "\n")
    (base / "shapes.txt").write_text("\n".join(shape_classes()) + "\n")
    (base / "attribute_shapes.txt").write_text("\n".join(attribute_classes()) + "\n")
    return base


def write_single(root: Path, spec: WorldSpec) -> Path:
    """The `single` split as an image folder, `single/<shape>/KEY.jpg` (what `tagalign-eval
    classify` reads), with `single/gold.jsonl` recording each image's shape, colour and size."""
    base = root / SINGLE_DIR
    for shape in SHAPES:
        (base / shape).mkdir(parents=True, exist_ok=True)
    with open(base / "gold.jsonl", "w", encoding="utf-8") as gold:
        for i in range(spec.n_single):
            obj, background, image = make_single_sample(spec.seed, i)
            key = f"single{i:07d}"
            (base / obj.shape / f"{key}.jpg").write_bytes(jpeg_bytes(image))
            record = {
                "key": key,
                "image": f"{obj.shape}/{key}.jpg",
                "shape": obj.shape,
                "colour": obj.colour,
                "size": obj.size,
                "background": background,
            }
            gold.write(json.dumps(record) + "\n")
    return base


def write_pairs(root: Path, spec: WorldSpec) -> Path:
    """The `pairs` split in the VOC layout under `VOCdevkit/ToyShapesPairs/`: images, attribute
    masks (`attribute_classes()` indices), val.txt and gold.jsonl."""
    base = root / "VOCdevkit" / PAIRS_VOC_NAME
    for sub in ("JPEGImages", ATTR_MASK_DIR, "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    keys = []
    with open(base / "gold.jsonl", "w", encoding="utf-8") as gold:
        for i in range(spec.n_pairs):
            scene, image, attr_mask = make_pair_sample(spec.seed, i)
            (base / "JPEGImages" / f"{scene.key}.jpg").write_bytes(jpeg_bytes(image))
            (base / ATTR_MASK_DIR / f"{scene.key}.png").write_bytes(palette_png_bytes(attr_mask))
            record = {"key": scene.key, "background": scene.background}
            gold.write(json.dumps(record | {"scene": [asdict(o) for o in scene.objects]}) + "\n")
            keys.append(scene.key)
    (base / "ImageSets/Segmentation/val.txt").write_text("\n".join(keys) + "\n")
    return base


def generate_world(
    root: str | Path, spec: WorldSpec = WorldSpec(), workers: int = 1, progress: bool = True
) -> Path:
    """Write the whole world under `root/<spec.key>/` once; later calls reuse it (marker file)."""
    world = Path(root) / spec.key
    done = world / "DONE"
    if done.exists():
        return world
    write_train(world, spec, workers, progress)
    write_val(world, spec, workers, progress)
    write_single(world, spec)
    write_pairs(world, spec)
    done.write_text(json.dumps(asdict(spec)) + "\n")
    return world
