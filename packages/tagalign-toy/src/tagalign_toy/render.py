"""Drawing a ToyShapes scene: textured backgrounds, per-shape surface patterns, and the image
with its shape-class and attribute-class masks (later objects occlude earlier ones)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from tagalign_toy.scene import COLOURS, IMAGE_SIZE, SHAPES, Scene, ShapeObject, attribute_classes


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
