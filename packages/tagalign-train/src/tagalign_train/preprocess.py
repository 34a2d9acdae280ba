"""Image normalisation: the one definition the trainer, the feature cache and the evaluator use.

A checkpoint records its mean/std (config.json's `preprocessing`), and every image the model sees,
in training or evaluation, goes through `normalize` with them, so train and eval cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: TagAlign's public code (inherited from TCL) normalises images with ImageNet statistics, not
#: CLIP's own, both in training and in its segmentation configs; "imagenet" reproduces the paper.
NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


def normalize(
    images: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """[..., 3, H, W] images to model input: uint8 is scaled to [0, 1] first, float is taken as
    already in [0, 1]; then (x - mean) / std per channel."""
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x - m) / s
