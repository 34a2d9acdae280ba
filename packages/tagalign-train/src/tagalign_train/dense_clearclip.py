"""ClearCLIP's last block: query-query attention, no residual connection, no FFN.

Lan, Chen, Ke, Wang, Feng, Zhang, "ClearCLIP: Decomposing CLIP Representations for Dense
Vision-Language Inference", ECCV 2024, arXiv 2407.12442 (the three modifications to the final
layer); official code mc-lan/ClearCLIP, `open_clip/transformer.py`
(`VisionTransformer.forward` with `ignore_residual=True`, `custom_attn(model_type='ClearCLIP')`).
See docs/dense-methods.md.
"""

from __future__ import annotations

import torch
from torch import nn

from tagalign_train.dense_attention import mix_values, self_similarity, split_heads


def clearclip_last_block(block: nn.Module, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The last block reduced to its attention branch, with q-q attention, per head:

        y = ln_1(x);   out = W_o (softmax(q q^T / sqrt(d)) v) + b_o

    `x` (the residual stream) and the FFN are dropped: the paper finds the residual carries the
    noise of CLIP's dense maps. The official code returns this sum of the last
    `last_n_layers` (default 1) blocks' attention outputs; one block here. Note its shipped
    `configs/base_config.py` selects `model_type='vanilla'` (q-k attention, residual still
    dropped); the paper's ClearCLIP and its `demo.py` use q-q, as here. `grid` is unused.
    """
    q, _, v = split_heads(block.attn, block.ln_1(x))
    return block.ls_1(mix_values(block.attn, self_similarity(q).softmax(dim=-1), v))
