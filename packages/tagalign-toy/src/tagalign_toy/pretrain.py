"""Pretraining the toy CLIP from scratch: its data and its contrastive training loop.

Trained with the standard CLIP contrastive loss, with the class token as the image embedding, so —
like real CLIP — it learns to align whole images with captions and is never told *where* anything
is. Its data is the generator's `pretrain` split (as real CLIP's web data is not TagAlign's
CC12M): groups of sibling images that differ only in their shapes, with full descriptions, batched
whole so that the object class is what the loss has to learn (`generator.make_pretrain_group`).
"""

from __future__ import annotations

import io
import math
import multiprocessing as mp
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.loss import ClipLoss
from PIL import Image
from tagalign_train.optim import param_groups
from tagalign_train.preprocess import NORMALIZATIONS, normalize
from tqdm import tqdm

from tagalign_toy.generator import jpeg_bytes, make_pretrain_group
from tagalign_toy.toy_clip import (
    DEFAULT_RECIPE,
    SIBLINGS,
    TOY_CLIP_NAME,
    PretrainRecipe,
    register_toy_clip,
    save_toy_clip,
    shipped_weights,
)


def _group_job(job: tuple[int, int]) -> tuple[list[str], np.ndarray]:
    captions, images = [], []
    for caption, image in make_pretrain_group(*job):
        captions.append(caption)
        # Through JPEG like every other ToyShapes image, so the CLIP sees the same kind of pixels.
        images.append(np.asarray(Image.open(io.BytesIO(jpeg_bytes(image))).convert("RGB")))
    return captions, np.stack(images)


def pretrain_pairs(
    recipe: PretrainRecipe, workers: int = 1, progress: bool = True
) -> tuple[torch.Tensor, list[str]]:
    """The `pretrain` split in memory, group-major: uint8 N×3×H×W images and their captions."""
    jobs = [(recipe.seed, i) for i in range(recipe.groups)]
    captions: list[str] = []
    chunks: list[np.ndarray] = []
    bar = tqdm(
        total=recipe.groups * SIBLINGS,
        desc="toy CLIP: pretrain split",
        unit="img",
        disable=not progress,
    )
    with bar, mp.get_context("spawn").Pool(workers) if workers > 1 else nullcontext() as pool:
        results = pool.imap(_group_job, jobs, chunksize=16) if pool else map(_group_job, jobs)
        for group_captions, group_images in results:
            captions += group_captions
            chunks.append(group_images)
            bar.update(len(group_captions))
    return torch.from_numpy(np.concatenate(chunks)).permute(0, 3, 1, 2).contiguous(), captions


def toy_clip_weights(
    cache_dir: Path,
    recipe: PretrainRecipe = DEFAULT_RECIPE,
    retrain: bool = False,
    progress: bool = True,
    threads: int = 2,
    workers: int = 1,
) -> Path:
    """The toy CLIP's weights folder: the cached one, else the shipped one, else trained now.

    `retrain` skips the shipped weights (the cache is still used: it holds only weights trained
    here). `threads` caps torch's intra-op threads while training (on a machine shared with other
    jobs, 1 is faster per step than 2 that wait on each other); weights are bitwise reproducible for
    a given thread count, which is therefore not part of the key.
    """
    out = cache_dir / recipe.dirname
    if (out / "open_clip_model.safetensors").is_file():
        return out
    if not retrain and (shipped := shipped_weights(recipe)) is not None:
        return shipped
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        images, captions = pretrain_pairs(recipe, workers, progress)
        state = train_toy_clip(images, captions, recipe, progress)
    finally:
        torch.set_num_threads(previous_threads)
    return save_toy_clip(state, out)


def _lr_at(step: int, recipe: PretrainRecipe) -> float:
    """Linear warmup, constant, then (over the last `recipe.decay` steps) linear decay to 0."""
    warm = min(1.0, (step + 1) / recipe.warmup)
    left = recipe.steps - step
    return recipe.lr * warm * (min(1.0, left / recipe.decay) if recipe.decay else 1.0)


def normalise(batch: torch.Tensor) -> torch.Tensor:
    """uint8 images to the ImageNet mean/std normalisation tagalign-train's `toy` preset uses."""
    return normalize(batch, *NORMALIZATIONS["imagenet"])


def sibling_batches(recipe: PretrainRecipe, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Sample indices, whole sibling groups at a time, over shuffled epochs of the groups."""
    per_batch = recipe.batch_size // SIBLINGS
    offsets = torch.arange(SIBLINGS)
    while True:
        order = torch.randperm(recipe.groups, generator=generator)
        for start in range(0, recipe.groups - per_batch + 1, per_batch):
            yield (order[start : start + per_batch, None] * SIBLINGS + offsets).reshape(-1)


def train_toy_clip(
    images: torch.Tensor,
    captions: list[str],
    recipe: PretrainRecipe,
    progress: bool = True,
    on_eval: Callable[[int, torch.nn.Module], None] | None = None,
    eval_every: int = 0,
) -> dict[str, torch.Tensor]:
    """CLIP contrastive training from scratch; returns the state dict.

    `on_eval(step, model)` is called every `eval_every` steps (for learning curves).
    """
    register_toy_clip()
    torch.manual_seed(recipe.seed)
    model = open_clip.create_model(TOY_CLIP_NAME, pretrained=None)
    tokens = open_clip.get_tokenizer(TOY_CLIP_NAME)(captions)
    opt = torch.optim.AdamW(param_groups(model, recipe.weight_decay), lr=recipe.lr)
    loss_fn = ClipLoss()
    batches = sibling_batches(recipe, torch.Generator().manual_seed(recipe.seed))
    model.train()
    bar = tqdm(range(recipe.steps), desc="toy CLIP pretraining", unit="step", disable=not progress)
    for step in bar:
        idx = next(batches)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, recipe)
        out_img, out_txt, scale = model(normalise(images[idx]), tokens[idx])[:3]
        loss = loss_fn(out_img, out_txt, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if on_eval is not None and eval_every and (step + 1) % eval_every == 0:
            model.eval()
            on_eval(step + 1, model)
            model.train()
    return model.state_dict()
