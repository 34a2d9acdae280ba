"""How a checkpoint turns an image into one embedding, for classification and retrieval.

TagAlign trains its contrastive loss on the mean of the projected patch embeddings
(`patch-mean`, `TagAlignModel.encode_image`): a dense model, its whole-image embedding is what
its dense one averages to. In the toy world that mean classifies single shapes far worse than
the frozen CLIP's own embedding (bench/RESULTS.md, issues 14 and 22), so two other poolings are
offered, each reading only what the checkpoint and its frozen CLIP already hold:

- `class-token`: the frozen CLIP's class token through the checkpoint's trained head (its copies
  of `ln_post` and `proj`, trained on the projected patches). The class token never passes the
  projector (a convolution over the patch grid), so this is CLIP's own global token, re-read by
  the head.
- `attention`: the projected patch embeddings weighted by a softmax over their cosine with the
  frozen CLIP's image embedding (temperature `ATTENTION_TEMPERATURE`): the patches CLIP's global
  view agrees with count more, as in attention pooling with CLIP's embedding as the one query.

`bench/bench_global_pooling.py` compares them (with the frozen CLIP's `encode_image` beside
them); the default stays the embedding the checkpoint was trained to align.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tagalign_eval.errors import EvalError

if TYPE_CHECKING:  # torch-free at import: the CLI's --pooling choice is read from here
    import torch
    from tagalign_train.model import TagAlignModel

POOLINGS = ("patch-mean", "class-token", "attention")
ATTENTION_TEMPERATURE = 0.1


def image_embedding_fn(
    model: TagAlignModel, pooling: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Normalised images [B, 3, S, S] -> the checkpoint's whole-image embeddings [B, E]."""
    check_pooling(pooling)
    if pooling == "patch-mean":
        return model.encode_image
    if pooling == "class-token":
        return lambda images: class_token_embedding(model, images)
    return lambda images: attention_embedding(model, images)


def check_pooling(pooling: str) -> None:
    """An unknown name is the one-line error (called before a model loads, too)."""
    if pooling not in POOLINGS:
        raise EvalError(f"unknown --pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")


def class_token_embedding(model: TagAlignModel, images: torch.Tensor) -> torch.Tensor:
    """The frozen CLIP's class token through the trained head."""
    import torch

    with torch.no_grad():
        return model.head_ln(_class_token(model, images)) @ model.head_proj


def attention_embedding(model: TagAlignModel, images: torch.Tensor) -> torch.Tensor:
    """Projected patches [B, E, h, w] pooled with softmax(cos(patch, CLIP's embedding) / T)."""
    import torch
    import torch.nn.functional as F

    visual = model.clip.visual
    with torch.no_grad():
        patches = model.dense_embeddings(images).flatten(2).transpose(1, 2).float()  # [B, hw, E]
        clip_embedding = visual.ln_post(_class_token(model, images)) @ visual.proj
        query = F.normalize(clip_embedding.float(), dim=-1)
        similarity = torch.einsum("bne,be->bn", F.normalize(patches, dim=-1), query)
        weights = torch.softmax(similarity / ATTENTION_TEMPERATURE, dim=1)
        return torch.einsum("bn,bne->be", weights, patches)


def _class_token(model: TagAlignModel, images: torch.Tensor) -> torch.Tensor:
    """The class token of CLIP's standard forward (no dense method) before `ln_post`, [B, C];
    the positional embedding interpolated to the checkpoint's image size, as its patches are."""
    x, _ = model.dense.embed(images)
    for block in model.clip.visual.transformer.resblocks:
        x = block(x)
    return x[:, 0]
