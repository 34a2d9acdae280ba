"""A small torch model with the evaluator's model interface (dense embeddings with a baseline,
text encoding, normalisation stats): lets evaluation logic be tested in separate processes
without building a CLIP model in each. Real convolutions, deterministic for a given seed."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from tagalign_eval.models import EvalModel
from torch import nn


class SmallDenseModel(nn.Module):
    image_mean = (0.5, 0.5, 0.5)
    image_std = (0.25, 0.25, 0.25)
    patch_size = 8

    def __init__(self, dim: int = 16, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Conv2d(3, dim, 8, 8)
        self.mix = nn.Conv2d(dim, dim, 3, padding=1)
        self.dim = dim

    @torch.no_grad()
    def dense_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        return self.mix(self.embed(images))

    @torch.no_grad()
    def dense_embeddings_with_baseline(self, images):
        x = self.embed(images)
        return self.mix(x), x

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """A fixed random vector per text (seeded by its hash)."""
        out = []
        for t in texts:
            seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
            out.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(seed)))
        return F.normalize(torch.stack(out), dim=-1)


def small_eval_model() -> EvalModel:
    return EvalModel(SmallDenseModel().eval(), {"kind": "checkpoint", "fingerprint": "small"})
