"""Single-image prediction with any free-text class list (attribute-specified classes included)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tagalign_eval import vis
from tagalign_eval.datasets.classes import ClassList
from tagalign_eval.errors import EvalError
from tagalign_eval.imagefiles import opened, read_rgb
from tagalign_eval.models import EvalModel
from tagalign_eval.protocols import Protocol

_TODO = "pass JPEG or PNG image files"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "class"


def check_images(images: list[Path]) -> None:
    """Before the model loads: every image is there and is an image file, and no two share a
    name (their outputs `<stem>_*.png` would overwrite each other)."""
    seen: dict[str, Path] = {}
    for path in images:
        with opened(path, "image", _TODO):
            pass  # the header is enough to tell an image file; pixels are decoded later
        if path.stem in seen:
            raise EvalError(
                f"{seen[path.stem]} and {path} have the same name; their outputs "
                f"{path.stem}_*.png would overwrite each other: predict them separately"
            )
        seen[path.stem] = path


def predict_images(
    model: EvalModel,
    images: list[Path],
    classes: ClassList,
    protocol: Protocol,
    out: Path,
    *,
    device: str | torch.device = "cpu",
    crop_batch: int = 16,
) -> Iterator[Path]:
    """For each image write `<stem>_overlay.png` (image size), `<stem>_panel.png` (image |
    overlay, legend), `<stem>_pred.png` (palette label map) and `<stem>_masks/<k>_<name>.png`."""
    if len(classes) > 256:
        raise EvalError(f"{len(classes)} classes; predict writes 8-bit label maps (at most 256)")
    segmenter = model.segmenter(classes, protocol, device=device, crop_batch=crop_batch)
    out.mkdir(parents=True, exist_ok=True)
    names = classes.names
    for path in images:
        image = read_rgb(path, _TODO)
        label = segmenter.segment([image])[0].cpu().numpy()
        stem = path.stem
        overlay = vis.overlay(image, label, len(names))
        vis.save(overlay, out / f"{stem}_overlay.png")
        yield out / f"{stem}_overlay.png"
        panel = Image.new("RGB", (image.shape[1] * 2, image.shape[0]))
        panel.paste(Image.fromarray(image), (0, 0))
        panel.paste(overlay, (image.shape[1], 0))
        vis.save(vis.with_legend(panel, label, names), out / f"{stem}_panel.png")
        pred = Image.fromarray(label.astype(np.uint8), "P")
        pred.putpalette(vis.palette(256).reshape(-1).tolist())
        vis.save(pred, out / f"{stem}_pred.png")
        for k, name in enumerate(names):
            mask = Image.fromarray(((label == k) * 255).astype(np.uint8), "L")
            vis.save(mask, out / f"{stem}_masks" / f"{k:03d}_{_slug(name)}.png")
        yield out / f"{stem}_panel.png"
