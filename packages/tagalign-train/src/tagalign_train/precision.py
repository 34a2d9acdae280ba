"""Mixed precision: bf16 autocast on GPUs that have it, fp16 + GradScaler on older GPUs, fp32 on
the CPU (where the tests and the toy runs must stay bit-reproducible)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch


@dataclass
class Precision:
    """`autocast()` wraps the forward pass; `scaler` is set only for fp16, where the loss must
    be scaled against underflow (see `backward` and `step`)."""

    autocast: Callable[[], AbstractContextManager]
    scaler: torch.amp.GradScaler | None = None

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring fp16-scaled gradients back to their true size (before clipping them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()


def precision_for(device: torch.device) -> Precision:
    if device.type != "cuda":
        return Precision(nullcontext)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return Precision(lambda: torch.autocast("cuda", dtype=dtype), scaler)
