"""NACLIP's last block: neighbourhood-aware k-k attention, no residual connection, no FFN.

Hajimiri, Ben Ayed, Dolz, "Pay Attention to Your Neighbours: Training-Free Open-Vocabulary
Semantic Segmentation", WACV 2025, arXiv 2404.08181 (method: neighbourhood attention with a
Gaussian kernel, key-key similarity, reduced architecture); official code sinahmr/NACLIP,
`clip/model.py` (`VisionTransformer.forward` with `arch='reduced'`,
`custom_attn` with `attn_strategy='naclip'`, `gaussian_window`, `get_attention_addition`) and
`naclip.py` (default `gaussian_std=5.`, used by every shipped config). See docs/dense-methods.md.
"""

from __future__ import annotations

import torch
from torch import nn

from tagalign_train.dense_attention import mix_values, self_similarity, split_heads

#: The Gaussian's standard deviation in patches (official default, every shipped config).
GAUSSIAN_STD = 5.0


def neighbourhood_prior(
    grid: tuple[int, int], std: float, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """[1+hw, 1+hw] logits bonus: exp(-|p_i - p_j|^2 / (2 std^2)) between patches i and j at
    grid positions p (row, column; tokens in row-major order), 0 on the class token's row and
    column. Unnormalised: a patch's bonus to itself is 1, as in the official
    `gaussian_window` (which the official code then places per patch by a convolution)."""
    h, w = grid
    rows = torch.arange(h, device=device, dtype=torch.float32).repeat_interleave(w)
    cols = torch.arange(w, device=device, dtype=torch.float32).repeat(h)
    dist2 = (rows[:, None] - rows[None]) ** 2 + (cols[:, None] - cols[None]) ** 2
    prior = torch.zeros(h * w + 1, h * w + 1, device=device, dtype=torch.float32)
    prior[1:, 1:] = torch.exp(-dist2 / (2 * std**2))
    return prior.to(dtype)


def naclip_last_block(block: nn.Module, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The last block reduced to its attention branch, with neighbourhood-aware k-k attention:

        y = ln_1(x);   A = softmax(k k^T / sqrt(d) + omega);   out = W_o (A v) + b_o

    omega is `neighbourhood_prior(grid, GAUSSIAN_STD)`, the same for every head and image, added
    to the *scaled* logits. Residual stream and FFN are dropped (the paper's reduced
    architecture; official `arch='reduced'`: `x = custom_attn(blk.attn, blk.ln_1(x))`).
    NACLIP's default PAMR post-processing (10 steps) is a protocol step, not part of the
    features, and is not applied here.
    """
    _, k, v = split_heads(block.attn, block.ln_1(x))
    omega = neighbourhood_prior(grid, GAUSSIAN_STD, device=k.device, dtype=k.dtype)
    weights = (self_similarity(k) + omega).softmax(dim=-1)
    return block.ls_1(mix_values(block.attn, weights, v))
