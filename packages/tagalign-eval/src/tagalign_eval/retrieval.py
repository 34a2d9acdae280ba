"""Zero-shot image-text retrieval on (image, caption) pairs: recall@1/5/10 both ways, for a
checkpoint and the plain CLIP side by side.

Image -> text: each image queries all captions, a hit when any of its own captions is in the
top k (the standard rule with several captions per image). Text -> image: each caption queries
all images, a hit when its image is in the top k. A k larger than the gallery counts the whole
gallery.

    from tagalign_eval.retrieval import retrieval

    result = retrieval(["coco/test.jsonl"], checkpoint="runs/cc12m", clip_model="ViT-B-16")
    print(result.table, result.scores[0].metrics["t2i_R@1"])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tagalign_eval.embedding import embed_images, load_encoders
from tagalign_eval.errors import EvalError
from tagalign_eval.evaluate import package_versions
from tagalign_eval.limits import check_range
from tagalign_eval.pairs import CaptionPairs, read_pairs
from tagalign_eval.ranking import recall_at_k
from tagalign_eval.scores import ModelScores, model_scores, scores_table

KS = (1, 5, 10)
DIRECTIONS = (("i2t", "Image→Text"), ("t2i", "Text→Image"))


@dataclass(frozen=True)
class RetrievalResult:
    """Every model's recall@k (percent) on one set of pairs; `to_dict()` is results.json.
    Metric keys are `i2t_R@k` and `t2i_R@k`."""

    sources: tuple[str, ...]
    images: int
    captions: int
    ks: tuple[int, ...]
    scores: tuple[ModelScores, ...]
    device: str
    versions: dict[str, str]

    @property
    def table(self) -> str:
        columns = [(f"{d}_R@{k}", f"{title} R@{k}") for d, title in DIRECTIONS for k in self.ks]
        return scores_table(self.scores, columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "retrieval",
            "pairs": list(self.sources),
            "images": self.images,
            "captions": self.captions,
            "ks": list(self.ks),
            "models": [s.to_dict() for s in self.scores],
            "table": self.table,
            "device": self.device,
            "versions": dict(self.versions),
        }


def retrieval_recalls(
    image_emb: torch.Tensor, text_emb: torch.Tensor, caption_image: torch.Tensor, ks: Sequence[int]
) -> dict[str, float]:
    """`i2t_R@k` and `t2i_R@k` in percent from L2-normalised image [I, E] and caption [T, E]
    embeddings, caption `j` belonging to image `caption_image[j]`."""
    image_ids = torch.arange(len(image_emb), device=image_emb.device)
    i2t = recall_at_k(image_emb, text_emb, image_ids, caption_image, ks)
    t2i = recall_at_k(text_emb, image_emb, caption_image, image_ids, ks)
    return {
        **{f"i2t_R@{k}": v for k, v in i2t.items()},
        **{f"t2i_R@{k}": v for k, v in t2i.items()},
    }


def retrieval(
    pair_files: Sequence[str | Path],
    *,
    checkpoint: str | Path | None = None,
    clip_model: str | None = None,
    pretrained: str | None = "openai",
    ks: Sequence[int] = KS,
    device: str | None = None,
    batch_size: int = 64,
    workers: int = 2,
    progress: bool = True,
    pooling: str = "patch-mean",
) -> RetrievalResult:
    """Recall@k both ways on the pairs of `pair_files` (JSONL and/or CSV) of the `checkpoint`'s
    model and/or the plain CLIP `clip_model` (an open_clip name or `local-dir:DIR`, with
    `pretrained` weights). The pairs and their images' existence are checked before a model
    loads. Raises `EvalError` for user mistakes."""
    from tagalign_eval.suite import pick_device

    check_range("batch_size", batch_size)
    check_range("workers", workers)
    if not ks or min(ks) < 1:
        raise EvalError(f"recall@k needs k of at least 1, not {list(ks)}")
    pairs: CaptionPairs = read_pairs(pair_files)
    torch_device = pick_device(device)
    owner = torch.tensor(pairs.caption_image, device=torch_device)
    scores = []
    for encoder in load_encoders(checkpoint, clip_model, pretrained, torch_device, pooling):
        start = time.perf_counter()
        texts = encoder.encode_text(list(pairs.captions))
        images = embed_images(
            encoder,
            pairs.images,
            device=torch_device,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
            desc=encoder.label,
        )
        metrics = retrieval_recalls(images, texts, owner, ks)
        scores.append(
            model_scores(encoder, metrics, len(pairs.images), time.perf_counter() - start)
        )
    return RetrievalResult(
        sources=pairs.sources,
        images=len(pairs.images),
        captions=len(pairs.captions),
        ks=tuple(ks),
        scores=tuple(scores),
        device=str(torch_device),
        versions=package_versions(),
    )
