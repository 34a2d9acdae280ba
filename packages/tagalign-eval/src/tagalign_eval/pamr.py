"""Pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), the optional post-processing step.

Each iteration replaces a pixel's class scores by an affinity-weighted average of its neighbours at
several dilations; affinities come from local colour differences scaled by the local colour spread,
so scores spread within regions of similar colour and stop at edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _neighbours(x: torch.Tensor, dilations: tuple[int, ...]) -> torch.Tensor:
    """[B,C,H,W] -> [B,C,P,H,W] with P = 8 * len(dilations) shifted copies (replicate padding)."""
    _, _, h, w = x.shape
    out = []
    for d in dilations:
        padded = F.pad(x, (d, d, d, d), mode="replicate")
        for dy, dx in _OFFSETS:
            out.append(padded[:, :, d + dy * d : d + dy * d + h, d + dx * d : d + dx * d + w])
    return torch.stack(out, dim=2)


def pamr(
    image: torch.Tensor,
    scores: torch.Tensor,
    iterations: int = 10,
    dilations: tuple[int, ...] = (1, 2, 4, 8, 12, 24),
    temperature: float = 0.1,
) -> torch.Tensor:
    """Refine `scores` [B,K,h,w] with the colours of `image` [B,3,H,W] (resized to h x w)."""
    image = F.interpolate(image, scores.shape[-2:], mode="bilinear", align_corners=True)
    neigh = _neighbours(image, dilations)
    spread = neigh.std(dim=2, keepdim=True)
    kernel = -((neigh - image.unsqueeze(2)).abs() / (1e-8 + temperature * spread)).mean(dim=1)
    affinity = torch.softmax(kernel, dim=1).unsqueeze(1)  # [B,1,P,h,w]
    for _ in range(iterations):
        scores = (_neighbours(scores, dilations) * affinity).sum(dim=2)
    return scores
