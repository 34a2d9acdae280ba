"""What `run_suite` is asked to do: `ModelSpec` and `SuiteRequest`, with each field's help, range
and choices.

Torch-free: the benchmark commands' flags are built from these fields at import
(`tagparse.fieldoptions`) and handed back to them unchanged, so a new run setting is one field
here (and its use in `suite.py`), not a flag, a default and a copy to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagparse.fieldoptions import setting
from tagparse.numbers import MAX_COUNT, Range

from tagalign_eval.baselines import BASELINES
from tagalign_eval.protocol import PRESETS

if TYPE_CHECKING:
    import torch

    from tagalign_eval.datasets import BenchmarkSpec
    from tagalign_eval.models import EvalModel

_BATCH = Range(1, 2**20)  # every count has an upper bound (2**63 overflows in torch)

CHECKPOINT_HELP = (
    "tagalign-train run, checkpoint dir or model.safetensors; or a shared projector: "
    "hf-hub:ORG/NAME or local-dir:DIR (tagalign-train push)."
)


@dataclass(frozen=True)
class ModelSpec:
    """What is evaluated: exactly one of a tagalign-train `checkpoint` (run dir, checkpoint dir or
    weights file) and a training-free `baseline` (a name of `BASELINES`) of an open_clip
    `model_name` with `pretrained` weights (an open_clip tag or a weights file)."""

    checkpoint: str | Path | None = setting(None, help=CHECKPOINT_HELP, path=True)
    baseline: str | None = setting(
        None, help="Training-free baseline instead of a checkpoint.", choices=tuple(BASELINES)
    )
    model_name: str = setting("ViT-B-16", help="open_clip model of a --baseline.", flag="--model")
    pretrained: str | None = setting(
        "openai", help="Weights of a --baseline: an open_clip tag or a weights file."
    )

    @property
    def label(self) -> str:
        """The table's row label: the baseline's name or the checkpoint's file or folder name."""
        return self.baseline or Path(self.checkpoint or "model").name

    def load(self, device: str | torch.device = "cpu") -> EvalModel:
        from tagalign_eval.models import load_eval_model

        return load_eval_model(
            None if self.checkpoint is None else str(self.checkpoint),
            self.baseline,
            model_name=self.model_name,
            pretrained=self.pretrained,
            device=device,
        )


DEVICE_HELP = "cuda, cuda:1, cpu (default: cuda if any)."


@dataclass(frozen=True)
class SuiteRequest:
    """One evaluation run: which benchmarks, where their data is, what model, under what protocol.

    `benchmarks` holds registered names (`voc`, `ade20k`, a plugin's) or specs (a custom folder).
    `overrides` replace protocol settings by `Protocol` field name; None values are ignored.
    """

    benchmarks: Sequence[str | BenchmarkSpec]
    data_root: str | Path | None = setting(
        help="Folder holding VOCdevkit/, ade/, coco_stuff164k/, cityscapes/, ImageNetS/.",
        path=True,
    )
    model: ModelSpec
    protocol: str = setting("tagalign-v3", help="Named protocol (preset).", choices=PRESETS)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    classes: str | None = setting(
        None,
        help="Class file or comma list overriding the benchmark's class names (one per class, "
        "in label order). A value with a / or ending in .txt is a file and must exist.",
    )
    device: str | None = setting(None, help=DEVICE_HELP)
    """Default: this rank's GPU under torchrun, else cuda if any."""
    batch_size: int = setting(2, help="Images per step.", range=_BATCH)
    crop_batch: int = setting(16, help="Crops per forward.", range=_BATCH)
    workers: int = setting(2, help="Image-decoding workers.", range=Range(0, 1024))
    limit: int | None = setting(
        None, help="Evaluate only the first N images.", range=Range(1, MAX_COUNT)
    )
    save_vis: str | Path | None = setting(
        None, help="Write image | GT | prediction PNGs.", path=True
    )
    save_pred: str | Path | None = setting(None, help="Write predicted label PNGs.", path=True)
    ignore_out_of_range: bool = setting(
        False,
        help="Leave mask values outside the class range out of the metric (they are reported) "
        "instead of failing.",
    )
    skip_missing: bool = False
    """Skip a benchmark whose files are not under `data_root` instead of failing (`all`)."""
    progress: bool = setting(True, help="Show a progress bar.")

    def __post_init__(self) -> None:
        names = (self.benchmarks,) if isinstance(self.benchmarks, str) else self.benchmarks
        object.__setattr__(self, "benchmarks", tuple(names))
