"""Does the toy CLIP know the world globally? Zero-shot naming of single-object images.

TagAlign's premise is a CLIP that aligns whole images with text but localizes poorly; this is the
"aligns globally" half, measured the way CLIP papers do: the top-1 prompt among the classes, on
the held-out `single` split (one object per image, so the answer is unambiguous). The object is
named with "a photo of a {shape}."; the attribute (colour) with "a photo of a {colour} {shape}."
averaged over the six shapes (CLIP's prompt ensembling), since the pretraining captions always
name a colour with its shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tagalign_toy.generator import SINGLE_DIR
from tagalign_toy.pretrain import normalise
from tagalign_toy.scene import COLOURS, SHAPES


@dataclass(frozen=True)
class ZeroShot:
    """Top-1 accuracies (fractions) on single-object images, and a uniform guess's."""

    shape: float
    colour: float
    images: int

    @property
    def chance(self) -> float:
        return 1 / len(SHAPES)


def load_single_split(world: Path) -> tuple[torch.Tensor, list[str], list[str]]:
    """The world's `single` split: uint8 N×3×H×W images, their shapes and their colours."""
    base = world / SINGLE_DIR
    with open(base / "gold.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    images = torch.stack(
        [
            torch.from_numpy(np.array(Image.open(base / r["image"]).convert("RGB"))).permute(
                2, 0, 1
            )
            for r in records
        ]
    )
    return images, [r["shape"] for r in records], [r["colour"] for r in records]


@torch.no_grad()
def class_prompts(model: torch.nn.Module, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised text embeddings: one per shape [6,E] and one per colour [6,E]."""
    shapes = model.encode_text(tokenizer([f"a photo of a {s}." for s in SHAPES]), normalize=True)
    pairs = [f"a photo of a {c} {s}." for c in COLOURS for s in SHAPES]
    colours = model.encode_text(tokenizer(pairs), normalize=True)
    colours = F.normalize(colours.reshape(len(COLOURS), len(SHAPES), -1).mean(1), dim=-1)
    return shapes, colours


@torch.no_grad()
def zero_shot_accuracy(
    model: torch.nn.Module,
    tokenizer,
    images: torch.Tensor,
    shapes: list[str],
    colours: list[str],
    batch: int = 256,
) -> ZeroShot:
    """Top-1 shape and colour accuracy of the CLIP's own image embedding (class token)."""
    shape_text, colour_text = class_prompts(model, tokenizer)
    feats = torch.cat(
        [
            model.encode_image(normalise(images[i : i + batch]), normalize=True)
            for i in range(0, len(images), batch)
        ]
    )
    shape_hits = [SHAPES[p] == s for p, s in zip((feats @ shape_text.T).argmax(1).tolist(), shapes)]
    colour_names = list(COLOURS)
    colour_hits = [
        colour_names[p] == c for p, c in zip((feats @ colour_text.T).argmax(1).tolist(), colours)
    ]
    return ZeroShot(float(np.mean(shape_hits)), float(np.mean(colour_hits)), len(images))
