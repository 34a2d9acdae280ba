"""TagAlign's losses: multi-tag classification + symmetric image-text InfoNCE.

Following the paper's public code, each loss owns its *own* learnable temperature (logit scale
initialised at 1/0.07 and clamped at 100 after `exp`): the tag loss compares against thousands of
tag embeddings while InfoNCE compares against a batch of captions, and the two prefer different
sharpness. Unlike the reference code, a zero ITC weight does not switch the tag loss off.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tagalign_train.config import TAG_LOSSES
from tagalign_train.errors import TrainError

INIT_SCALE = 1 / 0.07
MAX_SCALE = 100.0


class LogitScale(nn.Module):
    """exp(s) with s = log(1/0.07) at init, clamped at 100 (CLIP / TagAlign convention)."""

    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(INIT_SCALE)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=MAX_SCALE)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient for this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        parts = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        summed = torch.stack(grads)
        dist.all_reduce(summed)
        return summed[dist.get_rank()]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every rank; gradients flow back to each rank's own slice."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


def soft_target_ce_columns(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each tag's term of -(log softmax · L1-normalised multi-hot), [B,K]: summed over the tags
    and averaged over the batch it is the soft-target cross-entropy, summed over one kind's tags
    that kind's part of it.

    Rows without any tag have a zero target and contribute 0 (they still count in the mean, as in
    the reference code).
    """
    weights = targets / targets.sum(-1, keepdim=True).clamp(min=1.0)
    return -F.log_softmax(logits, dim=-1) * weights


def asymmetric_loss_columns(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_neg: float = 4.0,
    gamma_pos: float = 0.0,
    clip: float = 0.05,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Ridnik et al.'s ASL: focal down-weighting + probability shift for the many easy
    negatives; each tag's term, [B,K]."""
    p = torch.sigmoid(logits)
    p_neg = (p - clip).clamp(min=0.0)
    pos = targets * torch.log(p.clamp(min=eps)) * (1 - p).pow(gamma_pos)
    neg = (1 - targets) * torch.log((1 - p_neg).clamp(min=eps)) * p_neg.pow(gamma_neg)
    return -(pos + neg)


class TagLoss(nn.Module):
    """Multi-tag classification of the image embedding against fixed tag text embeddings.

    `groups` split the tag axis (e.g. objects | attributes) into separate softmaxes; one group
    covering every tag is the paper's single softmax over all K tags. `log_prior` (log tag
    frequencies) is needed for the logit-adjusted `balanced` softmax.
    """

    def __init__(
        self,
        kind: str = "softmax",
        groups: list[slice] | None = None,
        log_prior: torch.Tensor | None = None,
        kinds: dict[str, slice] | None = None,
        kind_weights: dict[str, float] | None = None,
    ):
        super().__init__()
        if kind not in TAG_LOSSES:
            raise TrainError(f"unknown tag loss {kind!r}; choose one of {', '.join(TAG_LOSSES)}")
        if kind == "balanced" and log_prior is None:
            raise TrainError("the balanced tag loss needs tag counts from tags.db")
        self.kind = kind
        self.groups = groups
        self.kinds = kinds
        self.kind_weights = kind_weights or {}
        self.scale = LogitScale()
        self.register_buffer(
            "log_prior", log_prior if log_prior is not None else torch.zeros(0), persistent=False
        )

    def columns(
        self, image_emb: torch.Tensor, tag_emb: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Each tag's term of the loss, [B,K] (summed over tags, averaged over the batch: the
        unweighted loss)."""
        logits = self.scale() * (F.normalize(image_emb, dim=-1) @ F.normalize(tag_emb, dim=-1).T)
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        if self.kind == "asymmetric":
            return asymmetric_loss_columns(logits, targets)
        if self.kind == "balanced":
            logits = logits + self.log_prior
        groups = self.groups or [slice(0, logits.shape[1])]
        return torch.cat([soft_target_ce_columns(logits[:, g], targets[:, g]) for g in groups], 1)

    def kind_terms(
        self, image_emb: torch.Tensor, tag_emb: torch.Tensor, targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The loss split by tag kind (`kinds`: name -> its columns), unweighted: whether the
        attribute part falls is a question of its own (issue 22). One term "tags" without kinds."""
        columns = self.columns(image_emb, tag_emb, targets)
        if not self.kinds:
            return {"tags": columns.sum(-1).mean()}
        return {name: columns[:, cols].sum(-1).mean() for name, cols in self.kinds.items()}

    def weighted(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The tag loss: each kind's part times its weight (`kind_weights`, 1 if not given)."""
        return sum(self.kind_weights.get(name, 1.0) * term for name, term in terms.items())

    def forward(
        self, image_emb: torch.Tensor, tag_emb: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        return self.weighted(self.kind_terms(image_emb, tag_emb, targets))


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE over the global batch (all ranks' embeddings, gathered with gradient)."""

    def __init__(self):
        super().__init__()
        self.scale = LogitScale()

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        image_emb = F.normalize(image_emb, dim=-1)
        text_emb = F.normalize(text_emb, dim=-1)
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        labels = torch.arange(len(image_emb), device=image_emb.device) + rank * len(image_emb)
        scale = self.scale()
        loss_img = F.cross_entropy(scale * image_emb @ gather_with_grad(text_emb).T, labels)
        loss_txt = F.cross_entropy(scale * text_emb @ gather_with_grad(image_emb).T, labels)
        return 0.5 * (loss_img + loss_txt)


class TagAlignLoss(nn.Module):
    """tag_weight · tag loss + itc_weight · InfoNCE; a zero weight skips that term's computation."""

    def __init__(self, tag_loss: TagLoss, tag_weight: float = 1.0, itc_weight: float = 1.0):
        super().__init__()
        if tag_weight < 0 or itc_weight < 0 or tag_weight + itc_weight == 0:
            raise TrainError("--tag-weight and --itc-weight must be >= 0 and not both 0")
        self.tag = tag_loss
        self.itc = ContrastiveLoss()
        self.tag_weight = tag_weight
        self.itc_weight = itc_weight

    def forward(
        self,
        image_emb: torch.Tensor,
        tag_emb: torch.Tensor,
        targets: torch.Tensor,
        text_emb: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        total = image_emb.new_zeros(())
        if self.tag_weight > 0:
            parts = self.tag.kind_terms(image_emb, tag_emb, targets)
            terms["tag"] = self.tag.weighted(parts)
            total = total + self.tag_weight * terms["tag"]
            if len(parts) > 1:  # logged per kind (metrics.jsonl: tag_object, tag_attribute)
                terms.update({f"tag_{name}": term.detach() for name, term in parts.items()})
        if self.itc_weight > 0:
            terms["itc"] = self.itc(image_emb, text_emb)
            total = total + self.itc_weight * terms["itc"]
        terms["loss"] = total
        return terms
