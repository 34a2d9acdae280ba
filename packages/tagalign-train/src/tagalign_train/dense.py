"""Dense patch tokens from a frozen open_clip ViT, computed over open_clip's own module weights.

Methods (all return tokens *before* `ln_post`, as TagAlign's public code does: it sets the CLIP
`ln_post`/`proj` aside and applies them after its projector):

- `surgery` — CLIP Surgery's dual path on the last `surgery_blocks` blocks (6 in TagAlign and
  CLIP Surgery). The original path runs the block unchanged; the new path starts from the input
  of the first surgery block and, in every surgery block, adds v-v self-attention (queries and
  keys replaced by the values) computed from `ln_1` of the *original* path's tokens, with the
  block's own out-projection and no FFN.
- `maskclip` — TagAlign's `ignore_last_attn`: in the last block every token attends only to
  itself (so attention reduces to its value path); residual and FFN are kept.
- `sclip` — SCLIP's correlative self-attention in the last block, residual and FFN kept
  (`dense_sclip`).
- `clearclip` — ClearCLIP's last block: q-q attention branch only, no residual, no FFN
  (`dense_clearclip`).
- `naclip` — NACLIP's last block: k-k attention plus a Gaussian neighbourhood prior on the
  logits, no residual, no FFN (`dense_naclip`).
- `none` — the plain last-block tokens.

All but `surgery` change the last block only: `LAST_BLOCKS` maps each to a function
`(block, x, grid) -> tokens` of the block's input. Formulas and sources: docs/dense-methods.md.

Positional embeddings are interpolated bicubically to whatever patch grid the input gives.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tagalign_train.config import DENSE_METHODS
from tagalign_train.dense_clearclip import clearclip_last_block
from tagalign_train.dense_naclip import naclip_last_block
from tagalign_train.dense_sclip import sclip_last_block
from tagalign_train.errors import TrainError


def interpolate_pos_embed(
    pos_embed: torch.Tensor, grid: tuple[int, int], src_grid: tuple[int, int]
) -> torch.Tensor:
    """Class-token embedding kept, patch embeddings resized bicubically to `grid`."""
    if tuple(grid) == tuple(src_grid):
        return pos_embed
    cls, patches = pos_embed[:1], pos_embed[1:]
    width = pos_embed.shape[-1]
    patches = patches.reshape(1, src_grid[0], src_grid[1], width).permute(0, 3, 1, 2)
    patches = F.interpolate(patches.float(), size=grid, mode="bicubic", align_corners=False)
    patches = patches.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(-1, width)
    return torch.cat([cls, patches])


def _vv_attention(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Self-attention with q = k = v = the block's value projection (CLIP Surgery)."""
    attn: nn.MultiheadAttention = block.attn
    b, n, c = x.shape
    heads = attn.num_heads
    weight = attn.in_proj_weight[2 * c :]
    bias = attn.in_proj_bias[2 * c :] if attn.in_proj_bias is not None else None
    v = F.linear(x, weight, bias).reshape(b, n, heads, c // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(v, v, v)  # scale = head_dim ** -0.5, as in Surgery
    out = out.transpose(1, 2).reshape(b, n, c)
    return attn.out_proj(out)


def _self_only_mask(n: int, like: torch.Tensor) -> torch.Tensor:
    mask = torch.full((n, n), float("-inf"), dtype=like.dtype, device=like.device)
    return mask.fill_diagonal_(0.0)


def _plain_last_block(block: nn.Module, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    return block(x)


def _maskclip_last_block(block: nn.Module, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    return block(x, attn_mask=_self_only_mask(x.shape[1], x))


LastBlock = Callable[[nn.Module, torch.Tensor, tuple[int, int]], torch.Tensor]

#: Dense method -> how the last block turns its input tokens [B,1+hw,C] into the dense tokens,
#: given the patch grid (h, w). `surgery` spans several blocks and is not one of these.
LAST_BLOCKS: dict[str, LastBlock] = {
    "none": _plain_last_block,
    "maskclip": _maskclip_last_block,
    "sclip": sclip_last_block,
    "clearclip": clearclip_last_block,
    "naclip": naclip_last_block,
}


class DenseFeatures(nn.Module):
    """Frozen dense-token extractor over an open_clip `VisionTransformer` (owns no weights)."""

    def __init__(self, visual: nn.Module, method: str = "surgery", surgery_blocks: int = 6):
        super().__init__()
        if method not in DENSE_METHODS:
            raise TrainError(
                f"unknown dense method {method!r}; choose one of {', '.join(DENSE_METHODS)}"
            )
        if not hasattr(visual, "transformer") or not hasattr(visual, "conv1"):
            raise TrainError(
                f"dense features need an open_clip VisionTransformer, got {type(visual).__name__}"
            )
        if getattr(visual, "attn_pool", None) is not None:
            raise TrainError(
                "dense features are not defined for vision towers with attentional pooling"
            )
        blocks = visual.transformer.resblocks
        if not all(
            hasattr(b, "ln_1") and isinstance(getattr(b, "attn", None), nn.MultiheadAttention)
            for b in blocks
        ):
            raise TrainError("dense features need standard open_clip residual attention blocks")
        if not getattr(visual.transformer, "batch_first", True):
            raise TrainError("dense features need a batch-first open_clip transformer")
        # Not registered as a submodule: the weights belong to the CLIP model that owns `visual`.
        object.__setattr__(self, "visual", visual)
        self.method = method
        self.surgery_blocks = min(surgery_blocks, len(blocks))

    @property
    def width(self) -> int:
        return self.visual.conv1.out_channels

    @property
    def patch_size(self) -> int:
        return int(self.visual.conv1.kernel_size[0])

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch + class tokens with interpolated positional embeddings, after `ln_pre`."""
        v = self.visual
        x = v.conv1(images)
        grid = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + interpolate_pos_embed(v.positional_embedding, grid, tuple(v.grid_size)).to(x.dtype)
        return v.ln_pre(x), grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,H,W] -> dense tokens before ln_post, [B,C,h,w]."""
        x, (h, w) = self.embed(images)
        blocks = list(self.visual.transformer.resblocks)
        if self.method in LAST_BLOCKS:
            for block in blocks[:-1]:
                x = block(x)
            x = LAST_BLOCKS[self.method](blocks[-1], x, (h, w))
        else:
            split = len(blocks) - self.surgery_blocks
            for block in blocks[:split]:
                x = block(x)
            new = original = x
            for i, block in enumerate(blocks[split:], start=split):
                y = block.ln_1(original)
                new = new + block.ls_1(_vv_attention(block, y))
                if i == len(blocks) - 1:
                    break  # the original path's last update feeds nothing we return
                original = original + block.ls_1(block.attention(y))
                original = original + block.ls_2(block.mlp(block.ln_2(original)))
            x = new
        tokens = x[:, 1:]
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w)
