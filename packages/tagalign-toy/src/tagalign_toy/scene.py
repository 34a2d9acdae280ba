"""ToyShapes scenes: the world's vocabulary (shapes, colours, sizes, backgrounds) and how a scene
of 1-3 upright shapes is drawn from a random stream, before any pixel or word exists.

`render` turns a scene into an image and masks, `captions` into noisy alt-text, and `generator`
gives every sample its own random stream and writes the splits (see its module doc).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tagalign_toy.caption_noise import CLEAN

TOYSHAPES_VERSION = "2"
IMAGE_SIZE = 96
MIN_VISIBLE = 0.5

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
        placed = place(rng, shape, colour, size, objects)
        if placed is not None:
            objects.append(placed)
    return Scene(key=key, background=background, objects=objects)


def place(
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
