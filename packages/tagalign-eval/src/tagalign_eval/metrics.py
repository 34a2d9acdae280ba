"""Segmentation metrics from a confusion matrix that stays on the inference device.

The confusion matrix is accumulated with one `bincount` per image (no host round trip), and the
summary follows mmseg's `mean_iou`: a class absent from both ground truth and prediction has
IoU NaN and is left out of the mean; a class absent from ground truth but predicted has IoU 0.
Label values outside `[0, num_classes)` that are not the ignore value are never counted in the
metric; they are tallied separately so the caller can report them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from tagalign_eval.labels import IGNORE


@dataclass
class ConfusionMatrix:
    """Rows are ground-truth classes, columns predicted classes."""

    num_classes: int
    device: torch.device | str = "cpu"
    matrix: torch.Tensor = field(init=False)
    out_of_range: dict[int, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.matrix = torch.zeros(
            self.num_classes, self.num_classes, dtype=torch.int64, device=self.device
        )

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> dict[int, int]:
        """Add one prediction/ground-truth pair; returns this pair's out-of-range label counts."""
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} != ground truth {tuple(gt.shape)}")
        pred = pred.reshape(-1).to(self.matrix.device, torch.int64)
        gt = gt.reshape(-1).to(self.matrix.device, torch.int64)
        k = self.num_classes
        valid = (gt >= 0) & (gt < k)
        bad = ~valid & (gt != IGNORE)
        bad_counts: dict[int, int] = {}
        if bool(bad.any()):
            values, counts = torch.unique(gt[bad], return_counts=True)
            bad_counts = {int(v): int(c) for v, c in zip(values.tolist(), counts.tolist())}
            for v, c in bad_counts.items():
                self.out_of_range[v] = self.out_of_range.get(v, 0) + c
        idx = gt[valid] * k + pred[valid]
        self.matrix += torch.bincount(idx, minlength=k * k).reshape(k, k)
        return bad_counts

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix.to(self.matrix.device)
        for v, c in other.out_of_range.items():
            self.out_of_range[v] = self.out_of_range.get(v, 0) + c


@dataclass(frozen=True)
class SegMetrics:
    """Summary of one benchmark; IoU/Acc values are fractions in [0, 1] or NaN."""

    iou: list[float]
    acc: list[float]
    miou: float
    macc: float
    aacc: float
    pixels: int

    def report(self, class_names: list[str]) -> ReportedMetrics:
        """The figures as results files and the CLI show them: named, in percent."""
        return ReportedMetrics(
            miou=_percent(self.miou),
            macc=_percent(self.macc),
            aacc=_percent(self.aacc),
            pixels=self.pixels,
            per_class=tuple(
                ClassMetrics(name, _percent(i), _percent(a))
                for name, i, a in zip(class_names, self.iou, self.acc)
            ),
        )


def _percent(x: float) -> float | None:
    """Percent rounded to 4 decimals; None where undefined (NaN has no JSON spelling)."""
    return None if math.isnan(x) else round(100.0 * x, 4)


@dataclass(frozen=True)
class ClassMetrics:
    """One class's IoU and accuracy in percent (None: absent from ground truth and prediction)."""

    name: str
    iou: float | None
    acc: float | None


@dataclass(frozen=True)
class ReportedMetrics:
    """A benchmark's metrics as reported: percentages, None where a value is undefined."""

    miou: float | None
    macc: float | None
    aacc: float | None
    pixels: int
    per_class: tuple[ClassMetrics, ...]

    def to_dict(self) -> dict[str, Any]:
        """The `metrics` record of results.json."""
        return {
            "mIoU": self.miou,
            "mAcc": self.macc,
            "aAcc": self.aacc,
            "pixels": self.pixels,
            "per_class": {c.name: {"IoU": c.iou, "Acc": c.acc} for c in self.per_class},
        }


def summarize(matrix: torch.Tensor) -> SegMetrics:
    """mmseg-compatible IoU/accuracy from a [K, K] confusion matrix (rows = ground truth)."""
    m = matrix.double().cpu()
    intersect = m.diag()
    gt_area = m.sum(1)
    pred_area = m.sum(0)
    union = gt_area + pred_area - intersect
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(union > 0, intersect / union.clamp(min=1), nan)
    acc = torch.where(gt_area > 0, intersect / gt_area.clamp(min=1), nan)
    total = float(m.sum())
    return SegMetrics(
        iou=iou.tolist(),
        acc=acc.tolist(),
        miou=float(torch.nanmean(iou)) if bool((~iou.isnan()).any()) else float("nan"),
        macc=float(torch.nanmean(acc)) if bool((~acc.isnan()).any()) else float("nan"),
        aacc=float(intersect.sum()) / total if total else float("nan"),
        pixels=int(total),
    )
