"""Trainable projectors over frozen dense tokens [B,C,h,w]; each is the identity at initialisation.

`conv` is TagAlign's GDecoder: 2 residual blocks, each with 2 pre-activation units
(LayerNorm2d -> GELU -> 3x3 conv C->C -> tanh gate initialised at 0). Because every unit's output
is multiplied by tanh(0) = 0 at init, the projector starts as the exact identity and the trained
model starts equal to the training-free baseline. `transformer` is one ViT block whose two
residual branches carry the same zero-initialised tanh gates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tagalign_train.config import PROJECTORS
from tagalign_train.errors import TrainError


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of a [B,C,H,W] map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class TanhGate(nn.Module):
    """Multiplies by tanh(g), g initialised at 0 so the branch starts switched off."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.gate) * x


class GatedConvUnit(nn.Module):
    """Pre-activation unit: LayerNorm2d -> GELU -> 3x3 conv -> tanh gate."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = LayerNorm2d(channels)
        self.act = nn.GELU()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.gate = TanhGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.conv(self.act(self.norm(x))))


class ResidualConvBlock(nn.Module):
    """x + u1(x), then + u2(.) — TagAlign's `ResConv(double=True, gate=True)`."""

    def __init__(self, channels: int):
        super().__init__()
        self.unit1 = GatedConvUnit(channels)
        self.unit2 = GatedConvUnit(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.unit1(x)
        return x + self.unit2(x)


class ConvProjector(nn.Sequential):
    """TagAlign's gated conv decoder (2 residual blocks by default)."""

    def __init__(self, channels: int, blocks: int = 2):
        super().__init__(*[ResidualConvBlock(channels) for _ in range(blocks)])


class GatedTransformerProjector(nn.Module):
    """One pre-norm ViT block over the patch tokens with zero-initialised tanh gates."""

    def __init__(self, channels: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.gate_1 = TanhGate()
        self.ln_2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels)
        )
        self.gate_2 = TanhGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        y = self.ln_1(t)
        t = t + self.gate_1(self.attn(y, y, y, need_weights=False)[0])
        t = t + self.gate_2(self.mlp(self.ln_2(t)))
        return t.transpose(1, 2).reshape(b, c, h, w)


def make_projector(kind: str, channels: int, heads: int) -> nn.Module:
    """Build a projector by name; all start as the identity."""
    if kind == "conv":
        return ConvProjector(channels)
    if kind == "transformer":
        return GatedTransformerProjector(channels, heads)
    if kind == "identity":
        return nn.Identity()
    raise TrainError(f"unknown projector {kind!r}; choose one of {', '.join(PROJECTORS)}")
