"""Zero-shot classification of an image folder: each class prompted with the templates, each image
given the class whose prompt embedding is most similar to its whole-image embedding; top-1 and
top-5 accuracy (top-5 only with at least 5 classes), for a checkpoint and the plain CLIP side by
side.

    from tagalign_eval.classify import classify

    result = classify("data/imagenet/val", checkpoint="runs/cc12m", clip_model="ViT-B-16")
    print(result.table, result.scores[0].metrics["top1"])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tagalign_eval.embedding import GlobalEncoder, embed_images, load_encoders
from tagalign_eval.evaluate import package_versions
from tagalign_eval.imagefolder import ImageFolder, open_image_folder
from tagalign_eval.limits import check_range
from tagalign_eval.ranking import recall_at_k
from tagalign_eval.scores import ModelScores, model_scores, scores_table
from tagalign_eval.templates import DEFAULT_TEMPLATES, check_templates


@dataclass(frozen=True)
class ClassifyResult:
    """Every model's top-k accuracy (percent) on one image folder; `to_dict()` is results.json."""

    data_root: str
    images: int
    folders: tuple[str, ...]
    class_names: tuple[str, ...]
    class_source: str
    templates: tuple[str, ...]
    ks: tuple[int, ...]
    scores: tuple[ModelScores, ...]
    device: str
    versions: dict[str, str]

    @property
    def table(self) -> str:
        return scores_table(self.scores, [(f"top{k}", f"Top-{k}") for k in self.ks])

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "classification",
            "data_root": self.data_root,
            "images": self.images,
            "classes": {
                "source": self.class_source,
                "count": len(self.class_names),
                "folders": list(self.folders),
                "names": list(self.class_names),
            },
            "templates": list(self.templates),
            "models": [s.to_dict() for s in self.scores],
            "table": self.table,
            "device": self.device,
            "versions": dict(self.versions),
        }


@torch.no_grad()
def class_embeddings(
    encoder: GlobalEncoder, names: Sequence[str], templates: Sequence[str]
) -> torch.Tensor:
    """[C, E] L2-normalised: per class, the mean of its prompts' normalised embeddings (CLIP's
    prompt ensemble)."""
    texts = [t.format(name) for name in names for t in templates]
    emb = encoder.encode_text(texts).reshape(len(names), len(templates), -1).mean(dim=1)
    return F.normalize(emb, dim=-1)


def accuracy_ks(num_classes: int) -> tuple[int, ...]:
    """Top-1, and top-5 when there are at least 5 classes (below that it is trivially 100)."""
    return (1, 5) if num_classes >= 5 else (1,)


def classify(
    root: str | Path,
    *,
    checkpoint: str | Path | None = None,
    clip_model: str | None = None,
    pretrained: str | None = "openai",
    classes: str | Path | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    device: str | None = None,
    batch_size: int = 64,
    workers: int = 2,
    progress: bool = True,
    pooling: str = "patch-mean",
) -> ClassifyResult:
    """Top-k accuracy on the image folder `root` of the `checkpoint`'s model and/or the plain
    CLIP `clip_model` (an open_clip name or `local-dir:DIR`, with `pretrained` weights).

    `classes` maps folders to class names (see `read_class_mapping`). The dataset and the
    templates are checked before a model loads. Raises `EvalError` for user mistakes."""
    from tagalign_eval.suite import pick_device

    check_range("batch_size", batch_size)
    check_range("workers", workers)
    prompts = check_templates(templates)
    data: ImageFolder = open_image_folder(root, classes)
    ks = accuracy_ks(len(data.folders))
    torch_device = pick_device(device)
    targets = torch.tensor(data.targets, device=torch_device)
    class_ids = torch.arange(len(data.folders), device=torch_device)
    scores = []
    for encoder in load_encoders(checkpoint, clip_model, pretrained, torch_device, pooling):
        start = time.perf_counter()
        texts = class_embeddings(encoder, data.names, prompts)
        images = embed_images(
            encoder,
            data.paths,
            device=torch_device,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
            desc=encoder.label,
        )
        recall = recall_at_k(images, texts, targets, class_ids, ks)
        metrics = {f"top{k}": recall[k] for k in ks}
        scores.append(model_scores(encoder, metrics, len(data.paths), time.perf_counter() - start))
    return ClassifyResult(
        data_root=str(data.root.resolve()),
        images=len(data.paths),
        folders=data.folders,
        class_names=data.names,
        class_source=data.class_source,
        templates=prompts,
        ks=ks,
        scores=tuple(scores),
        device=str(torch_device),
        versions=package_versions(),
    )
