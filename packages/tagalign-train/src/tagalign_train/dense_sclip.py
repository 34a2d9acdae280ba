"""SCLIP's last block: correlative self-attention (CSA) in place of the q-k attention.

Wang, Mei, Yuille, "SCLIP: Rethinking Self-Attention for Dense Vision-Language Inference",
ECCV 2024, arXiv 2312.01597 (method: correlative self-attention); official code
wangf3014/SCLIP, `clip/model.py` (`VisionTransformer.forward` and `custom_attn(..., csa=True)`).
See docs/dense-methods.md.
"""

from __future__ import annotations

import torch
from torch import nn

from tagalign_train.dense_attention import mix_values, self_similarity, split_heads


def correlative_attention(attn: nn.MultiheadAttention, y: torch.Tensor) -> torch.Tensor:
    """CSA on normalised tokens y [B,N,C], per head with d = C/H:

        A = softmax(q q^T / sqrt(d)) + softmax(k k^T / sqrt(d)),   out = W_o (A v) + b_o

    The paper derives CSA as softmax(X W_r (X W_r)^T) with a projection W_r and, training-free,
    reuses the pretrained W_q and W_k as two such projections, summed. The two softmaxes are
    added, not averaged (each row of A sums to 2), exactly as the official `custom_attn` does.
    """
    q, k, v = split_heads(attn, y)
    weights = self_similarity(q).softmax(dim=-1) + self_similarity(k).softmax(dim=-1)
    return mix_values(attn, weights, v)


def sclip_last_block(block: nn.Module, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The last block with CSA swapped in and everything else kept (residual and FFN):

        x = x + CSA(ln_1(x));   x = x + FFN(ln_2(x))

    The paper replaces only the self-attention module; the official forward keeps both
    residual connections and the MLP of the last block. (ClearCLIP and NACLIP drop them.)
    `grid` is unused: CSA has no spatial prior.
    """
    x = x + block.ls_1(correlative_attention(block.attn, block.ln_1(x)))
    return x + block.ls_2(block.mlp(block.ln_2(x)))
