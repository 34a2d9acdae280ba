"""Writes small real benchmark folders (JPEG/PNG images, palette/grey/RGB masks) in each
benchmark's on-disk layout, so the loaders are tested on the files they will really read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tagalign_eval.datasets import BenchmarkSpec
from tagalign_eval.vis import palette

SUBFOLDER = {"cityscapes": "frankfurt", "imagenet-s50": "n01443537", "imagenet-s300": "n01443537"}


def stems_for(spec: BenchmarkSpec, n: int) -> list[str]:
    sub = SUBFOLDER.get(spec.name)
    return [f"{sub}/{spec.name}_{i:04d}" if sub else f"{spec.name}_{i:04d}" for i in range(n)]


def file_values(spec: BenchmarkSpec, num_classes: int) -> tuple[np.ndarray, int]:
    """The class values as written in the files, and the file's ignore value."""
    offset = 1 if spec.reduce_zero_label else 0
    return np.arange(num_classes) + offset, spec.ignore_index


def write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95) if path.suffix.lower() in (
        ".jpg",
        ".jpeg",
    ) else Image.fromarray(rgb).save(path)


def write_mask(path: Path, raw: np.ndarray, spec: BenchmarkSpec) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.mask_encoding == "rgb16":
        rgb = np.stack([raw % 256, raw // 256, np.zeros_like(raw)], -1).astype(np.uint8)
        Image.fromarray(rgb, "RGB").save(path)
        return
    img = Image.fromarray(raw.astype(np.uint8), "P")
    img.putpalette(palette(256).reshape(-1).tolist())
    img.save(path)


def write_benchmark(
    spec: BenchmarkSpec,
    data_root: Path,
    n: int = 3,
    size: tuple[int, int] = (40, 30),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """n image/mask pairs; returns stem -> raw mask values as written (left half one class,
    right half another, a band of ignore pixels, and in reduce_zero_label sets a band of 0)."""
    rng = np.random.default_rng(seed)
    k = len(spec.class_list())
    values, ignore = file_values(spec, k)
    w, h = size
    root = data_root / spec.root
    written = {}
    for stem in stems_for(spec, n):
        a, b = rng.choice(values, 2, replace=False)
        raw = np.full((h, w), a, dtype=np.int64)
        raw[:, w // 2 :] = b
        raw[: h // 6] = ignore
        if spec.reduce_zero_label:
            raw[-2:] = 0
        rgb = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        write_image(root / spec.img_dir / f"{stem}{spec.img_suffix}", rgb)
        write_mask(root / spec.ann_dir / f"{stem}{spec.ann_suffix}", raw, spec)
        written[stem] = raw
    if spec.split:
        split = root / spec.split
        split.parent.mkdir(parents=True, exist_ok=True)
        split.write_text("\n".join(written) + "\n")
    return written


def rle_encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool mask (what the Detail/COCO json files hold)."""
    flat = mask.T.reshape(-1).astype(np.uint8)  # column-major runs, starting with zeros
    counts, value, run = [], 0, 0
    for px in flat:
        if px != value:
            counts.append(run)
            value, run = px, 0
        run += 1
    counts.append(run)
    text = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if c & 0x10 else (x != 0)
            if more:
                c |= 0x20
            text.append(chr(c + 48))
    return {"size": list(mask.shape), "counts": "".join(text)}
