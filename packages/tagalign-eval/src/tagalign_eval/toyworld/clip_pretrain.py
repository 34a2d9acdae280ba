"""A "pretrained CLIP" for the toy world: a tiny open_clip model trained from scratch on ToyShapes.

Trained with the standard CLIP contrastive loss on the train split's (image, caption) pairs, with
the class token as the image embedding, so — like real CLIP — it learns to align whole images with
captions and is never told *where* anything is. The weights are saved as a plain open_clip state
dict and reloaded through `open_clip.create_model_and_transforms(name, pretrained=PATH)`, the path
real weights take. The result is cached under a key of (world, config, recipe), so re-runs skip it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tarfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.constants import IMAGENET_MEAN, IMAGENET_STD
from open_clip.loss import ClipLoss
from PIL import Image
from tqdm import tqdm

from tagalign_eval.toyworld.generator import SHAPES

TOY_CLIP_NAME = "toy-clip"
PRETRAIN_VERSION = "1"


def toy_clip_config_path() -> Path:
    """The JSON config shipped with tagalign-train's tiny configs."""
    return Path(str(resources.files("tagalign_train") / "model_configs" / f"{TOY_CLIP_NAME}.json"))


def register_toy_clip() -> None:
    """Make `toy-clip` known to open_clip (tagalign-train registers its folder on import too)."""
    if TOY_CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(toy_clip_config_path())


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything besides the data that decides the weights."""

    steps: int = 800
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.1
    warmup: int = 40
    seed: int = 0


def load_pairs(world: Path) -> tuple[torch.Tensor, list[str]]:
    """All train images as one uint8 tensor N×3×H×W (the toy world fits in memory) + captions."""
    images, captions = [], []
    for shard in sorted((world / "train").glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name in sorted(members):
                if not name.endswith(".jpg"):
                    continue
                key = name[: -len(".jpg")]
                img = Image.open(io.BytesIO(tar.extractfile(members[name]).read())).convert("RGB")
                images.append(torch.from_numpy(np.array(img)).permute(2, 0, 1))
                captions.append(tar.extractfile(members[f"{key}.txt"]).read().decode("utf-8"))
    return torch.stack(images), captions


def cache_path(world: Path, cache_dir: Path, recipe: PretrainRecipe) -> Path:
    """Where the weights for this (world, config, recipe) live."""
    ident = json.dumps({"world": world.name, "config": toy_clip_config_path().read_text(),
                        "recipe": asdict(recipe), "version": PRETRAIN_VERSION}, sort_keys=True)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return cache_dir / f"{TOY_CLIP_NAME}-{world.name}-{digest}.pt"


def _lr_at(step: int, recipe: PretrainRecipe) -> float:
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _normalise(batch: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch.float() / 255 - mean) / std


def pretrain_toy_clip(world: Path, cache_dir: Path, recipe: PretrainRecipe = PretrainRecipe(),
                      progress: bool = True, threads: int = 2) -> Path:
    """Train (or reuse) the toy CLIP; returns the open_clip weights file.

    Images are normalised with ImageNet mean/std, the statistics tagalign-train uses. All train
    images are decoded once into memory, so a step costs only the forward/backward pass. `threads`
    caps torch's intra-op threads (the budget is 2 cores; on a machine shared with other jobs, 1
    is several times faster per step because 2 threads wait on each other). Weights are bitwise
    reproducible for a given thread count; it is not part of the cache key.
    """
    out = cache_path(world, cache_dir, recipe)
    if out.is_file():
        return out
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _train(world, out, recipe, progress)
    finally:
        torch.set_num_threads(previous_threads)
    return out


def _train(world: Path, out: Path, recipe: PretrainRecipe, progress: bool) -> None:
    """CLIP contrastive training over shuffled epochs of the in-memory pairs; saves to `out`."""
    register_toy_clip()
    torch.manual_seed(recipe.seed)
    model = open_clip.create_model(TOY_CLIP_NAME, pretrained=None)
    tokenizer = open_clip.get_tokenizer(TOY_CLIP_NAME)
    images, captions = load_pairs(world)
    tokens = tokenizer(captions)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    loss_fn = ClipLoss()
    order = torch.Generator().manual_seed(recipe.seed)
    perm, cursor = torch.randperm(len(captions), generator=order), 0
    model.train()
    bar = tqdm(range(recipe.steps), desc="toy CLIP pretraining", unit="step", disable=not progress)
    for step in bar:
        if cursor + recipe.batch_size > len(perm):
            perm, cursor = torch.randperm(len(captions), generator=order), 0
        idx = perm[cursor: cursor + recipe.batch_size]
        cursor += recipe.batch_size
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    tmp.replace(out)


def load_toy_clip(weights: Path):
    """The toy CLIP through open_clip's normal loading path: (model, preprocess, tokenizer)."""
    register_toy_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(TOY_CLIP_NAME, pretrained=str(weights))
    return model.eval(), preprocess, open_clip.get_tokenizer(TOY_CLIP_NAME)


@torch.no_grad()
def zero_shot_shape_accuracy(weights: Path, world: Path, limit: int = 200) -> tuple[float, float]:
    """Global alignment check: how often the top-scoring "a photo of a {shape}." prompt names a
    shape that is in the val image, and how often a uniform random guess would."""
    model, _, tokenizer = load_toy_clip(weights)
    text = model.encode_text(tokenizer([f"a photo of a {s}." for s in SHAPES]))
    text = text / text.norm(dim=-1, keepdim=True)
    base = world / "VOCdevkit" / "ToyShapes"
    hits = chance = 0.0
    with open(base / "gold.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f][:limit]
    batch = torch.stack([torch.from_numpy(np.array(Image.open(base / "JPEGImages" / f"{r['key']}.jpg")
                                                     .convert("RGB"))).permute(2, 0, 1) for r in records])
    feats = model.encode_image(_normalise(batch))
    top = (feats @ text.T).argmax(dim=1).tolist()
    for record, pred in zip(records, top):
        present = {o["shape"] for o in record["scene"]}
        hits += SHAPES[pred] in present
        chance += len(present) / len(SHAPES)
    return hits / len(records), chance / len(records)
