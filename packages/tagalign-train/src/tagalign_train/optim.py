"""The optimizer recipe: AdamW with weight decay on matrices only, lr scaled with the batch."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from tagalign_train.config import REFERENCE_BATCH


def param_groups(modules: nn.Module | Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Two AdamW groups over the trainable parameters of `modules`, in module order: decay on
    matrices and kernels, none on 1-D (and 0-D) parameters (norms, biases, gates,
    temperatures), which decay would only pull towards zero."""
    if isinstance(modules, nn.Module):
        modules = [modules]
    decay, no_decay = [], []
    for module in modules:
        for p in module.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """The linear scaling rule: `base_lr` is the rate at the paper's global batch of 4096."""
    return base_lr * global_batch / REFERENCE_BATCH


def make_optimizer(
    modules: Iterable[nn.Module], lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """TagAlign's AdamW (eps 1e-6); the rate stays constant for the whole run."""
    return torch.optim.AdamW(param_groups(modules, weight_decay), lr=lr, eps=1e-6)
