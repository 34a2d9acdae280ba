"""A "pretrained CLIP" for the toy world: a tiny open_clip model trained from scratch on ToyShapes.

Trained with the standard CLIP contrastive loss, with the class token as the image embedding, so —
like real CLIP — it learns to align whole images with captions and is never told *where* anything
is. Its data is the generator's `pretrain` split (as real CLIP's web data is not TagAlign's
CC12M): groups of sibling images that differ only in their shapes, batched together, so that shape
is what the loss has to learn (see `generator.make_sibling_group` for why).

The weights are saved as open_clip safetensors and reloaded through
`open_clip.create_model_and_transforms(name, pretrained=PATH)`, the path real weights take. They
are cached under a key of (generator version, config, recipe). Pretraining a toy CLIP that learns
shapes at all takes about 50 minutes on 2 CPU threads, so the package ships the weights of the default
recipe (`weights/`, fp16, written by `scripts/pretrain_toy_clip.py`), the way real CLIP weights are
downloaded rather than retrained; `tagalign-demo --retrain-clip` retrains them from scratch.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing as mp
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.constants import IMAGENET_MEAN, IMAGENET_STD
from open_clip.loss import ClipLoss
from PIL import Image
from safetensors.torch import save_file
from tqdm import tqdm

from tagalign_eval.toyworld.generator import (
    SHAPES,
    TOYSHAPES_VERSION,
    jpeg_bytes,
    make_sibling_group,
)

TOY_CLIP_NAME = "toy-clip"
PRETRAIN_VERSION = "2"
SHIPPED_DIR = Path(__file__).parent / "weights"


def toy_clip_config_path() -> Path:
    """The JSON config shipped with tagalign-train's tiny configs."""
    return Path(str(resources.files("tagalign_train") / "model_configs" / f"{TOY_CLIP_NAME}.json"))


def register_toy_clip() -> None:
    """Make `toy-clip` known to open_clip (tagalign-train registers its folder on import too)."""
    if TOY_CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(toy_clip_config_path())


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that decides the weights: the pretraining data and the optimisation."""

    groups: int = 2000
    siblings: int = 8
    steps: int = 20000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size % self.siblings or self.batch_size // self.siblings > self.groups:
            raise ValueError(
                f"batch_size {self.batch_size} must be a multiple of siblings "
                f"{self.siblings} and hold at most `groups` ({self.groups}) groups"
            )

    @property
    def digest(self) -> str:
        """Identity of the weights: generator version, model config and this recipe."""
        ident = json.dumps(
            {
                "generator": TOYSHAPES_VERSION,
                "config": json.loads(toy_clip_config_path().read_text()),
                "recipe": asdict(self),
                "version": PRETRAIN_VERSION,
            },
            sort_keys=True,
        )
        return hashlib.sha256(ident.encode()).hexdigest()[:12]

    @property
    def filename(self) -> str:
        return f"{TOY_CLIP_NAME}-{self.digest}.safetensors"


def _group_job(job: tuple[int, int, int]) -> tuple[list[str], np.ndarray]:
    seed, index, size = job
    captions, images = [], []
    for scene, image in make_sibling_group(seed, index, size):
        captions.append(scene.caption)
        # Through JPEG like every other ToyShapes image, so the CLIP sees the same kind of pixels.
        images.append(np.asarray(Image.open(io.BytesIO(jpeg_bytes(image))).convert("RGB")))
    return captions, np.stack(images)


def pretrain_pairs(
    recipe: PretrainRecipe, workers: int = 1, progress: bool = True
) -> tuple[torch.Tensor, list[str]]:
    """The `pretrain` split in memory, group-major: uint8 N×3×H×W images and their captions."""
    jobs = [(recipe.seed, i, recipe.siblings) for i in range(recipe.groups)]
    captions: list[str] = []
    chunks: list[np.ndarray] = []
    bar = tqdm(
        total=recipe.groups * recipe.siblings,
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


def shipped_weights(recipe: PretrainRecipe) -> Path | None:
    """The packaged weights of `recipe`, if this recipe is the one that was shipped."""
    path = SHIPPED_DIR / recipe.filename
    return path if path.is_file() else None


def toy_clip_weights(
    cache_dir: Path,
    recipe: PretrainRecipe = PretrainRecipe(),
    retrain: bool = False,
    progress: bool = True,
    threads: int = 2,
    workers: int = 1,
) -> Path:
    """The toy CLIP's weights file: the cached one, else the shipped one, else trained now.

    `retrain` skips the shipped weights (the cache is still used: it holds only weights trained
    here). `threads` caps torch's intra-op threads while training (on a machine shared with other
    jobs, 1 is faster per step than 2 that wait on each other); weights are bitwise reproducible for
    a given thread count, which is therefore not part of the key.
    """
    out = cache_dir / recipe.filename
    if out.is_file():
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
    save_weights(state, out)
    return out


def save_weights(
    state: dict[str, torch.Tensor], out: Path, dtype: torch.dtype | None = None
) -> None:
    """Atomically write a state dict as safetensors (optionally cast, e.g. fp16 for shipping)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
        for k, v in state.items()
    }
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp))
    tmp.replace(out)


def _lr_at(step: int, recipe: PretrainRecipe) -> float:
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _normalise(batch: torch.Tensor) -> torch.Tensor:
    """uint8 images to the ImageNet mean/std normalisation tagalign-train uses."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch.float() / 255 - mean) / std


def _batches(recipe: PretrainRecipe, generator: torch.Generator):
    """Sample indices, whole sibling groups at a time, over shuffled epochs of the groups."""
    per_batch = recipe.batch_size // recipe.siblings
    offsets = torch.arange(recipe.siblings)
    while True:
        order = torch.randperm(recipe.groups, generator=generator)
        for start in range(0, recipe.groups - per_batch + 1, per_batch):
            yield (order[start : start + per_batch, None] * recipe.siblings + offsets).reshape(-1)


def train_toy_clip(
    images: torch.Tensor,
    captions: list[str],
    recipe: PretrainRecipe,
    progress: bool = True,
    on_eval=None,
    eval_every: int = 0,
) -> dict[str, torch.Tensor]:
    """CLIP contrastive training from scratch; returns the state dict.

    `on_eval(step, model)` is called every `eval_every` steps (for learning curves).
    """
    register_toy_clip()
    torch.manual_seed(recipe.seed)
    model = open_clip.create_model(TOY_CLIP_NAME, pretrained=None)
    tokens = open_clip.get_tokenizer(TOY_CLIP_NAME)(captions)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": recipe.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=recipe.lr,
    )
    loss_fn = ClipLoss()
    batches = _batches(recipe, torch.Generator().manual_seed(recipe.seed))
    model.train()
    bar = tqdm(range(recipe.steps), desc="toy CLIP pretraining", unit="step", disable=not progress)
    for step in bar:
        idx = next(batches)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, recipe)
        out_img, out_txt, scale = model(_normalise(images[idx]), tokens[idx])[:3]
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


def load_toy_clip(weights: Path):
    """The toy CLIP through open_clip's normal loading path: (model, preprocess, tokenizer)."""
    register_toy_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(
        TOY_CLIP_NAME, pretrained=str(weights)
    )
    return model.eval(), preprocess, open_clip.get_tokenizer(TOY_CLIP_NAME)


def load_val_images(world: Path, limit: int = 200) -> tuple[torch.Tensor, list[set[str]]]:
    """The first `limit` val images (uint8 N×3×H×W) and the shapes each one contains."""
    base = world / "VOCdevkit" / "ToyShapes"
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
    model, images: torch.Tensor, present: list[set[str]]
) -> tuple[float, float]:
    """Global alignment check: how often the top-scoring "a photo of a {shape}." prompt names a
    shape that is in the image, and how often a uniform random guess would."""
    tokenizer = open_clip.get_tokenizer(TOY_CLIP_NAME)
    text = model.encode_text(tokenizer([f"a photo of a {s}." for s in SHAPES]), normalize=True)
    feats = model.encode_image(_normalise(images), normalize=True)
    top = (feats @ text.T).argmax(dim=1).tolist()
    hits = sum(SHAPES[pred] in shapes for pred, shapes in zip(top, present))
    chance = sum(len(shapes) / len(SHAPES) for shapes in present)
    return hits / len(present), chance / len(present)
