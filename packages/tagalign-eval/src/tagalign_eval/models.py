"""Loads what is evaluated: a tagalign-train checkpoint, or a training-free baseline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import torch

from tagalign_eval.baselines import BASELINES
from tagalign_eval.errors import EvalError
from tagalign_eval.inference import DenseFn, Segmenter, encode_classes

if TYPE_CHECKING:
    from tagalign_eval.datasets.classes import ClassList
    from tagalign_eval.protocols import Protocol


@dataclass
class EvalModel:
    """A TagAlignModel plus what the result files record about it."""

    model: Any
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_baseline(self) -> bool:
        return self.info["kind"] == "baseline"

    def dense_fn(self) -> DenseFn:
        """Trained + training-free embeddings in one backbone pass; a baseline has one path only
        (its identity projector makes both paths the same, so any CLIP blend is a no-op)."""
        if self.is_baseline:
            return lambda images: (self.model.dense_embeddings(images), None)
        return self.model.dense_embeddings_with_baseline

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(texts)

    def segmenter(
        self, classes: ClassList, protocol: Protocol, *, device: torch.device, crop_batch: int
    ) -> Segmenter:
        """The sliding-window segmenter for `classes` (prompted with the protocol's templates),
        normalising images with this model's own mean/std: one setup for benchmarks and predict."""
        return Segmenter(
            self.dense_fn(),
            encode_classes(self.encode_text, classes, protocol.templates),
            protocol,
            self.model.image_mean,
            self.model.image_std,
            device=device,
            crop_batch=crop_batch,
        )


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _warn(message: str) -> None:
    """A damaged newer checkpoint of a run that was skipped for an older intact one."""
    click.echo(f"warning: {message}", err=True)


def load_eval_model(
    checkpoint: str | None = None,
    baseline: str | None = None,
    *,
    model_name: str = "ViT-B-16",
    pretrained: str | None = "openai",
    device: str | torch.device = "cpu",
) -> EvalModel:
    """Exactly one of `checkpoint` (a run dir, checkpoint dir or weights file, or a shared
    projector as `hf-hub:ORG/NAME` or `local-dir:PATH`) and `baseline`."""
    from tagalign_train.checkpoint import load_checkpoint
    from tagalign_train.errors import TrainError
    from tagalign_train.model import build_model
    from tagalign_train.refs import is_reference

    if (checkpoint is None) == (baseline is None):
        raise EvalError(
            f"pass exactly one of --checkpoint RUN and --baseline {'|'.join(BASELINES)}"
        )
    try:
        if checkpoint is not None:
            loaded = load_checkpoint(checkpoint, device=device, warn=_warn)
            model = loaded.model
            info = {
                "kind": "checkpoint",
                "path": checkpoint if is_reference(checkpoint) else str(Path(checkpoint).resolve()),
                "checkpoint_dir": str(loaded.directory.resolve()),
                "fingerprint": _fingerprint(loaded.files),
                "config": loaded.config.to_dict(),
            }
        else:
            if baseline not in BASELINES:
                raise EvalError(f"--baseline must be one of {', '.join(BASELINES)}")
            model = build_model(
                model_name,
                pretrained,
                dense=BASELINES[baseline],
                projector="identity",
                device=device,
            ).eval()
            weights = Path(pretrained) if pretrained and Path(pretrained).is_file() else None
            info = {
                "kind": "baseline",
                "baseline": baseline,
                "model": model_name,
                "pretrained": pretrained or "none",
                "fingerprint": _fingerprint([weights]) if weights else f"{model_name}:{pretrained}",
                "config": {"model": model.config.to_dict()},
            }
    except TrainError as exc:
        raise EvalError(str(exc)) from exc
    return EvalModel(model, info)
