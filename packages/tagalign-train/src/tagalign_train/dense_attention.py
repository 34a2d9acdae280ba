"""Multi-head attention taken apart over an open_clip block's own weights.

The training-free last blocks (SCLIP, ClearCLIP, NACLIP) keep the block's q/k/v and
out-projections and change only the attention weights between them; these helpers are that
shared frame: split the packed in-projection into per-head q, k, v, form a scaled self-similarity,
and mix the values with given weights back through the out-projection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def split_heads(
    attn: nn.MultiheadAttention, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x [B,N,C] -> q, k, v, each [B,H,N,C/H], from the block's packed in-projection."""
    b, n, c = x.shape
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = (
        t.reshape(b, n, attn.num_heads, c // attn.num_heads).transpose(1, 2)
        for t in qkv.chunk(3, dim=-1)
    )
    return q, k, v


def self_similarity(t: torch.Tensor) -> torch.Tensor:
    """Scaled dot products of a token set with itself, t t^T / sqrt(d): [B,H,N,d] -> [B,H,N,N]."""
    return t @ t.transpose(-2, -1) * t.shape[-1] ** -0.5


def mix_values(attn: nn.MultiheadAttention, weights: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """weights [B,H,N,N] applied to v [B,H,N,d], heads merged, out-projection: -> [B,N,C]."""
    b, heads, n, d = v.shape
    out = (weights @ v).transpose(1, 2).reshape(b, n, heads * d)
    return attn.out_proj(out)
