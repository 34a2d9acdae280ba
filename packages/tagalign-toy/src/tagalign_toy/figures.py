"""Pictures of the toy world's results: readable overlays and the seed spread.

The world's images are 96 px, so the evaluator's own panels (drawn at image size) are too small
to read. These are drawn scaled up with nearest-neighbour (every predicted pixel stays a crisp
block of `scale`² pixels), one row per image: image | ground truth | each model's prediction,
with the classes that appear in a legend. The seed-spread plot shows every seed's value as a dot
and the mean ± sd as a bar, so a gain that is smaller than the spread is seen to be one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tagalign_eval.vis import colorize, palette

HEADER = 18
INK = (0, 0, 0)
PAPER = (255, 255, 255)


def _scaled(pixels: np.ndarray, scale: int) -> Image.Image:
    return Image.fromarray(pixels).resize(
        (pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST
    )


def _legend(names: Sequence[str], present: Sequence[int], width: int) -> Image.Image:
    font = ImageFont.load_default()
    colours = palette(len(names))
    cell, row = 130, 16
    per_row = max(1, width // cell)
    rows = max(1, (len(present) + per_row - 1) // per_row)
    legend = Image.new("RGB", (width, rows * row + 6), PAPER)
    draw = ImageDraw.Draw(legend)
    for k, cls in enumerate(present):
        x, y = (k % per_row) * cell + 6, (k // per_row) * row + 3
        fill = tuple(int(v) for v in colours[cls])
        draw.rectangle([x, y + 2, x + 11, y + 12], fill=fill, outline=INK)
        draw.text((x + 16, y), names[cls], fill=INK, font=font)
    return legend


def overlay_grid(
    images: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    predictions: Mapping[str, Sequence[np.ndarray]],
    names: Sequence[str],
    scale: int = 3,
) -> Image.Image:
    """One row per image: the image, its ground truth and each model's label map (columns named
    by `predictions`' keys), each `scale`× larger, with a legend of the classes shown."""
    h, w = images[0].shape[:2]
    columns = ["image", "ground truth", *predictions]
    cw, ch = w * scale, h * scale
    grid = Image.new("RGB", (cw * len(columns), HEADER + ch * len(images)), PAPER)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for c, title in enumerate(columns):
        draw.text((c * cw + 4, 3), title[: cw // 6], fill=INK, font=font)
    seen: set[int] = set()
    for r, (image, truth) in enumerate(zip(images, truths, strict=True)):
        maps = [truth, *(p[r] for p in predictions.values())]
        seen |= {int(v) for m in maps for v in np.unique(m) if 0 <= v < len(names)}
        panels = [image, *(colorize(m, len(names)) for m in maps)]
        for c, panel in enumerate(panels):
            grid.paste(_scaled(panel, scale), (c * cw, HEADER + r * ch))
    legend = _legend(names, sorted(seen), grid.width)
    out = Image.new("RGB", (grid.width, grid.height + legend.height), PAPER)
    out.paste(grid, (0, 0))
    out.paste(legend, (0, grid.height))
    return out


def seed_spread_plot(
    values: Mapping[str, Sequence[float]], title: str, unit: str = "mIoU"
) -> Image.Image:
    """A dot per seed and a mean ± sd bar for each row of `values` (label -> per-seed values)."""
    font = ImageFont.load_default()
    flat = [v for vs in values.values() for v in vs]
    lo, hi = min(flat), max(flat)
    pad = max(0.5, 0.1 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    left, right, row, top = 330, 40, 28, 34
    width = 900
    height = top + row * len(values) + 40
    plot = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(plot)
    draw.text((8, 8), title, fill=INK, font=font)

    def x_of(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (width - left - right)

    for k in range(6):  # axis ticks
        v = lo + k * (hi - lo) / 5
        x = x_of(v)
        draw.line([x, top - 4, x, height - 30], fill=(225, 225, 225))
        draw.text((x - 12, height - 26), f"{v:.1f}", fill=INK, font=font)
    draw.text((width - right - 40, height - 14), unit, fill=INK, font=font)
    for i, (label, vs) in enumerate(values.items()):
        y = top + i * row + row // 2
        draw.text((8, y - 6), label[:52], fill=INK, font=font)
        mean, sd = float(np.mean(vs)), float(np.std(vs, ddof=1)) if len(vs) > 1 else 0.0
        draw.line([x_of(mean - sd), y, x_of(mean + sd), y], fill=(90, 90, 200), width=3)
        draw.line([x_of(mean), y - 8, x_of(mean), y + 8], fill=(90, 90, 200), width=3)
        for v in vs:
            x = x_of(v)
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(220, 60, 40), outline=INK)
    return plot


def save_picture(picture: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path
