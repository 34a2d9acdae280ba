"""Does the toy CLIP know the world globally? Zero-shot shape naming on the val images.

TagAlign's premise is a CLIP that aligns whole images with text but localizes poorly; this is the
"aligns globally" half, measured the way CLIP papers do (top-1 prompt), against a random guess.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tagalign_toy.generator import SHAPES, VOC_NAME
from tagalign_toy.pretrain import normalise


def load_val_images(world: Path, limit: int = 200) -> tuple[torch.Tensor, list[set[str]]]:
    """The first `limit` val images (uint8 N×3×H×W) and the shapes each one contains."""
    base = world / "VOCdevkit" / VOC_NAME
    with open(base / "gold.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f][:limit]
    images = torch.stack(
        [
            torch.from_numpy(
                np.array(Image.open(base / "JPEGImages" / f"{r['key']}.jpg").convert("RGB"))
            ).permute(2, 0, 1)
            for r in records
        ]
    )
    return images, [{o["shape"] for o in r["scene"]} for r in records]


@torch.no_grad()
def zero_shot_shape_accuracy(
    model: torch.nn.Module, tokenizer, images: torch.Tensor, present: list[set[str]]
) -> tuple[float, float]:
    """How often the top-scoring "a photo of a {shape}." prompt names a shape that is in the
    image, and how often a uniform random guess would."""
    text = model.encode_text(tokenizer([f"a photo of a {s}." for s in SHAPES]), normalize=True)
    feats = model.encode_image(normalise(images), normalize=True)
    top = (feats @ text.T).argmax(dim=1).tolist()
    hits = sum(SHAPES[pred] in shapes for pred, shapes in zip(top, present, strict=True))
    chance = sum(len(shapes) / len(SHAPES) for shapes in present)
    return hits / len(present), chance / len(present)
