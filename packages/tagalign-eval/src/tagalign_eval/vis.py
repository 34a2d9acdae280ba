"""Pictures: palette label PNGs (same encoding as the ground truth) and side-by-side panels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tagalign_eval.datasets.spec import BenchmarkSpec
from tagalign_eval.labels import IGNORE
from tagalign_eval.outputs import writing

IGNORE_COLOR = (255, 255, 255)


def palette(n: int) -> np.ndarray:
    """The Pascal VOC colour map generalised to n colours (bit-interleaved class index)."""
    colors = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors[i] = (r, g, b)
    return colors


def colorize(label: np.ndarray, n: int) -> np.ndarray:
    """H x W labels (IGNORE allowed) -> H x W x 3 uint8."""
    colors = palette(max(n, 1))
    out = colors[np.clip(label, 0, n - 1)]
    out[label == IGNORE] = IGNORE_COLOR
    return out


def label_file_image(label: np.ndarray, spec: BenchmarkSpec) -> Image.Image:
    """A label map in evaluated space written the way the benchmark's masks are written."""
    raw = label.astype(np.int64) + (1 if spec.reduce_zero_label else 0)
    if spec.mask_encoding == "rgb16":
        rgb = np.stack([raw % 256, raw // 256, np.zeros_like(raw)], axis=-1).astype(np.uint8)
        return Image.fromarray(rgb, "RGB")
    img = Image.fromarray(raw.astype(np.uint8), "P")
    img.putpalette(palette(256).reshape(-1).tolist())
    return img


def _legend(names: list[str], present: list[int], n: int, width: int) -> Image.Image:
    font = ImageFont.load_default()
    colors = palette(max(n, 1))
    row_h, cell_w = 16, 160
    per_row = max(1, width // cell_w)
    rows = (len(present) + per_row - 1) // per_row
    legend = Image.new("RGB", (width, max(1, rows) * row_h + 4), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for k, cls in enumerate(present):
        x, y = (k % per_row) * cell_w + 4, (k // per_row) * row_h + 2
        draw.rectangle(
            [x, y + 2, x + 12, y + 12], fill=tuple(int(v) for v in colors[cls]), outline=(0, 0, 0)
        )
        draw.text((x + 16, y), names[cls][:22], fill=(0, 0, 0), font=font)
    return legend


def side_by_side(
    image: np.ndarray, gt: np.ndarray | None, pred: np.ndarray, names: list[str]
) -> Image.Image:
    """Image | ground truth | prediction, with a legend of the classes that appear."""
    n = len(names)
    panels = [image] + ([colorize(gt, n)] if gt is not None else []) + [colorize(pred, n)]
    h, w = image.shape[:2]
    strip = Image.new("RGB", (w * len(panels), h), (255, 255, 255))
    for i, panel in enumerate(panels):
        strip.paste(Image.fromarray(panel), (i * w, 0))
    seen = set(np.unique(pred).tolist())
    if gt is not None:
        seen |= set(np.unique(gt).tolist())
    legend = _legend(names, sorted(c for c in seen if 0 <= c < n), n, strip.width)
    out = Image.new("RGB", (strip.width, h + legend.height), (255, 255, 255))
    out.paste(strip, (0, 0))
    out.paste(legend, (0, h))
    return out


def overlay(image: np.ndarray, pred: np.ndarray, n: int, alpha: float = 0.5) -> Image.Image:
    """The image with the coloured prediction blended on top, at the image's own size."""
    blend = image.astype(np.float32) * (1 - alpha) + colorize(pred, n) * alpha
    return Image.fromarray(blend.astype(np.uint8))


def with_legend(picture: Image.Image, pred: np.ndarray, names: list[str]) -> Image.Image:
    """`picture` with a legend of the predicted classes underneath."""
    n = len(names)
    legend = _legend(
        names, sorted(c for c in np.unique(pred).tolist() if 0 <= c < n), n, picture.width
    )
    out = Image.new("RGB", (picture.width, picture.height + legend.height), (255, 255, 255))
    out.paste(picture, (0, 0))
    out.paste(legend, (0, picture.height))
    return out


def save(img: Image.Image, path: Path) -> None:
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
