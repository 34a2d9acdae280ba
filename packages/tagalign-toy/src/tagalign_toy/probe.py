"""The supervised ceiling of the toy CLIP's frozen patch tokens: a linear probe trained with masks.

TagAlign's premise is a CLIP that aligns globally but localizes poorly. "Poorly" is only meaningful
against what its patch tokens *could* give: a 1×1 linear classifier on the frozen tokens, trained
with the generator's ground-truth masks (logits upsampled bilinearly to the mask, cross-entropy),
is the standard segmentation linear probe. Its val mIoU, beside the training-free dense mIoU, is the
room a method that only re-reads those tokens (TagAlign's projector) can hope to close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tagalign_eval.metrics import ConfusionMatrix, summarize
from tagalign_train.model import build_model
from tagalign_train.preprocess import NORMALIZATIONS, normalize
from tqdm import tqdm

from tagalign_toy.generator import ATTR_MASK_DIR, SHAPE_MASK_DIR, VOC_NAME, make_sample
from tagalign_toy.scene import COLOURS, SHAPES
from tagalign_toy.toy_clip import model_spec

#: Which ground truth a probe is trained and scored on: mask folder and class count.
TARGETS = {"toyshapes": (SHAPE_MASK_DIR, 7), "toyshapes-attr": (ATTR_MASK_DIR, 37)}


@dataclass(frozen=True)
class ProbeResult:
    """One probe: the dense method whose tokens it read, the target, and its val mIoU (percent)."""

    dense: str
    target: str
    miou: float
    train_images: int
    steps: int


@torch.no_grad()
def frozen_tokens(weights: Path, dense: str, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """The toy CLIP's frozen patch embeddings (ln_post + proj, what is matched against text) under
    `dense`, [N,E,h,w], for uint8 images N×3×H×W."""
    model = build_model(model_spec(weights), None, dense=dense, projector="identity").eval()
    mean, std = NORMALIZATIONS["imagenet"]
    out = [
        model.baseline_features(
            model.backbone_features(normalize(images[i : i + batch], mean, std))
        )
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out)


def train_split(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first `n` train samples of world `seed` with their masks (regenerated: the train
    split on disk has captions, not masks): uint8 images N×3×H×W, shape and attribute masks."""
    images, shapes, attrs = [], [], []
    for i in range(n):
        _, image, shape_mask, attr_mask = make_sample(seed, "train", i)
        images.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))
        shapes.append(torch.from_numpy(shape_mask.astype(np.int64)))
        attrs.append(torch.from_numpy(attr_mask.astype(np.int64)))
    return torch.stack(images), torch.stack(shapes), torch.stack(attrs)


def val_split(world: Path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The world's val images and masks as the benchmarks read them from disk."""
    base = world / "VOCdevkit" / VOC_NAME
    keys = (base / "ImageSets/Segmentation/val.txt").read_text().split()

    def read(folder: str, key: str, ext: str) -> np.ndarray:
        return np.array(Image.open(base / folder / f"{key}.{ext}"))

    images = torch.stack(
        [torch.from_numpy(read("JPEGImages", k, "jpg")).permute(2, 0, 1) for k in keys]
    )
    masks = {
        target: torch.stack(
            [torch.from_numpy(read(folder, k, "png").astype(np.int64)) for k in keys]
        )
        for target, (folder, _) in TARGETS.items()
    }
    return images, masks


def fit_probe(
    tokens: torch.Tensor,
    masks: torch.Tensor,
    num_classes: int,
    steps: int = 400,
    batch: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
) -> torch.nn.Conv2d:
    """A 1×1 conv (per-token linear classifier) on frozen tokens, fitted with Adam on the
    cross-entropy of its bilinearly upsampled logits against the masks (at half resolution, every
    other pixel: 4× cheaper, and the probe is still scored at full resolution)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = torch.nn.Conv2d(tokens.shape[1], num_classes, 1)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    targets = masks[:, ::2, ::2]
    for _ in range(steps):
        idx = torch.randint(0, len(tokens), (min(batch, len(tokens)),), generator=generator)
        logits = F.interpolate(probe(tokens[idx]), targets.shape[-2:], mode="bilinear")
        loss = F.cross_entropy(logits, targets[idx], ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return probe


@torch.no_grad()
def probe_miou(probe: torch.nn.Conv2d, tokens: torch.Tensor, masks: torch.Tensor) -> float:
    """Val mIoU (percent) of a probe, with the evaluator's confusion matrix and mIoU rule."""
    matrix = ConfusionMatrix(probe.out_channels)
    for i in range(0, len(tokens), 64):
        logits = F.interpolate(probe(tokens[i : i + 64]), masks.shape[-2:], mode="bilinear")
        matrix.update(logits.argmax(1), masks[i : i + 64])
    return 100.0 * summarize(matrix.matrix).miou


def linear_probe_ceiling(
    weights: Path,
    world: Path,
    seed: int,
    n_train: int = 2000,
    dense_methods: Sequence[str] = ("none", "surgery"),
    steps: int = 400,
    progress: bool = True,
) -> list[ProbeResult]:
    """Probe mIoU on the val split for each dense method and each target (shapes, attr-shapes)."""
    train_images, shape_masks, attr_masks = train_split(seed, n_train)
    train_masks = {"toyshapes": shape_masks, "toyshapes-attr": attr_masks}
    val_images, val_masks = val_split(world)
    results = []
    for dense in tqdm(dense_methods, desc="linear probes", disable=not progress):
        train_tokens = frozen_tokens(weights, dense, train_images)
        val_tokens = frozen_tokens(weights, dense, val_images)
        for target, (_, classes) in TARGETS.items():
            probe = fit_probe(train_tokens, train_masks[target], classes, steps, seed=seed)
            miou = probe_miou(probe, val_tokens, val_masks[target])
            results.append(ProbeResult(dense, target, round(miou, 4), n_train, steps))
    return results


# ---------------------------------------------------------------- colour probe (issue 22)

#: Background + one class per colour: what a per-patch colour probe predicts.
COLOUR_CLASSES = 1 + len(COLOURS)


def colour_masks(attr_masks: torch.Tensor) -> torch.Tensor:
    """Attribute-class masks (`attribute_classes()`: colour-major, 0 background, 255 ignore) as
    colour-class masks (0 background, 1 + the colour's index)."""
    colour = torch.where(attr_masks > 0, (attr_masks - 1) // len(SHAPES) + 1, 0)
    return torch.where(attr_masks == 255, 255, colour)


@torch.no_grad()
def checkpoint_tokens(run: Path, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """A trained run's projected patch embeddings (what the evaluator matches against the class
    prompts), [N,E,h,w], for uint8 images N×3×H×W."""
    from tagalign_train.checkpoint import load_checkpoint

    model = load_checkpoint(run).model.eval()
    pre = model.config.preprocessing
    return torch.cat(
        [
            model.dense_embeddings(normalize(images[i : i + batch], pre.mean, pre.std))
            for i in range(0, len(images), batch)
        ]
    )


def colour_probe(
    train_tokens: torch.Tensor,
    train_attr: torch.Tensor,
    val_tokens: torch.Tensor,
    val_attr: torch.Tensor,
    steps: int = 400,
    seed: int = 0,
) -> float:
    """Val mIoU (percent) of a per-patch linear colour classifier on one model's patch features:
    do they encode colour where it is? (The attribute tags' supervision is pooled over the
    image; this asks whether colour survives, per patch, in what the projector outputs.)"""
    probe = fit_probe(train_tokens, colour_masks(train_attr), COLOUR_CLASSES, steps, seed=seed)
    return probe_miou(probe, val_tokens, colour_masks(val_attr))
