"""Shared parts of the classification and retrieval tests: a checkpoint trained by the real
trainer, real image files, and reference embeddings computed without tagalign-eval (open_clip
called directly for the plain CLIP, the trainer's own training step for the checkpoint)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))

TINY = "tagalign-tiny-ViT"
Embed = Callable[[Sequence[Path]], torch.Tensor]


def trained_run(root: Path, weights: str) -> Path:
    """A tagalign-train run (4 steps on the trainer tests' coloured-shapes world)."""
    from tagalign_train.config import TrainConfig
    from tagalign_train.train import train
    from train_helpers import make_tags_db, make_world

    shards, samples = make_world(root / "shards", n=16, shards=1)
    db = make_tags_db(root / "tags.db", samples)
    cfg = TrainConfig(
        labels=db,
        data=shards,
        out=str(root / "run"),
        preset="toy",
        pretrained=weights,
        batch_size=8,
        workers=0,
        steps=4,
        image_size=32,
        progress=False,
        text_cache=str(root / "text-cache"),
    )
    return train(cfg).out


def write_images(folder: Path, count: int, seed: int, suffix: str = ".png") -> list[Path]:
    """`count` random RGB images of varied sizes, saved as real files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        h, w = int(rng.integers(30, 70)), int(rng.integers(30, 70))
        path = folder / f"img{i}{suffix}"
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def clip_reference(weights: str) -> tuple[Embed, Callable[[list[str]], torch.Tensor]]:
    """Normalised image and text embeddings of the plain CLIP, from open_clip alone."""
    clip, _, preprocess = open_clip.create_model_and_transforms(TINY, pretrained=weights)
    clip.eval()
    tokenizer = open_clip.get_tokenizer(TINY)

    @torch.no_grad()
    def images(paths: Sequence[Path]) -> torch.Tensor:
        batch = torch.stack([preprocess(_rgb(p)) for p in paths])
        return F.normalize(clip.encode_image(batch), dim=-1)

    @torch.no_grad()
    def texts(items: list[str]) -> torch.Tensor:
        return F.normalize(clip.encode_text(tokenizer(items)), dim=-1)

    return images, texts


class _Recorder(nn.Module):
    """Stands in for the loss in the trainer's `TrainStep`, keeping the image embedding."""

    def forward(self, image_emb, tag_emb, targets, text_emb):
        self.image_emb = image_emb
        return {"loss": image_emb.sum()}


def training_reference(run: Path) -> tuple[Embed, Callable[[list[str]], torch.Tensor]]:
    """Normalised embeddings of a checkpoint as training computes them: the trainer's loader,
    its un-augmented transform and normalisation, and its `TrainStep` forward."""
    from tagalign_train.checkpoint import load_checkpoint
    from tagalign_train.data import plain_transform
    from tagalign_train.preprocess import normalize
    from tagalign_train.run import TrainStep

    model = load_checkpoint(run).model
    pre = model.config.preprocessing
    recorder = _Recorder()
    step = TrainStep(model, recorder, torch.zeros(1, model.config.embed_dim)).eval()

    @torch.no_grad()
    def images(paths: Sequence[Path]) -> torch.Tensor:
        x = normalize(
            torch.stack([plain_transform(pre.image_size)(_rgb(p)) for p in paths]),
            pre.mean,
            pre.std,
        )
        step(x, torch.zeros(len(x), 1), None, False)
        return F.normalize(recorder.image_emb, dim=-1)

    return images, model.encode_text


def brute_recall(sim: torch.Tensor, query_ids: Sequence[int], gallery_ids: Sequence[int], k: int):
    """Percent of queries whose own id is among the ids of their k best gallery items, by
    sorting each row in Python."""
    hits = 0
    for row, own in zip(sim.tolist(), query_ids):
        order = sorted(range(len(row)), key=lambda j: -row[j])[:k]
        hits += any(gallery_ids[j] == own for j in order)
    return 100.0 * hits / len(query_ids)
