"""Whole-image and text embeddings of the two models that classification and retrieval compare.

A trained checkpoint embeds an image as training does (`TagAlignModel.encode_image`: the mean of
the projected patch embeddings, the embedding its contrastive loss was trained on; `--pooling`
picks another, see `tagalign_eval.pooling`), after
training's own un-augmented preprocessing (`plain_transform`: short side resized, centre crop)
and the mean/std its config.json records. The plain CLIP baseline embeds it with CLIP's own
`encode_image` after open_clip's own eval transform. Each model encodes text with its frozen text
tower. Both sides are L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image
from tagalign_train.data import plain_transform
from tagalign_train.preprocess import normalize
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tagalign_eval.errors import EvalError
from tagalign_eval.imagefiles import opened
from tagalign_eval.models import EvalModel, load_eval_model
from tagalign_eval.pooling import check_pooling, image_embedding_fn

ImageTransform = Callable[[Image.Image], torch.Tensor]

_TODO = "replace or remove the file"


@dataclass
class GlobalEncoder:
    """One compared model: its table label, what results.json records about it, and how it turns
    image files and texts into embeddings."""

    label: str
    info: dict[str, Any]
    """What was evaluated (kind, path or model, fingerprint, config; see `load_eval_model`)."""
    transform: ImageTransform
    """A decoded RGB image -> the model's normalised [3, S, S] input."""
    image_fn: Callable[[torch.Tensor], torch.Tensor]
    """Normalised images [B, 3, S, S] -> embeddings [B, E] (not normalised)."""
    text_fn: Callable[[list[str]], torch.Tensor]
    """Texts -> L2-normalised embeddings [N, E]."""

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_fn(images).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.text_fn(texts).float()


def checkpoint_encoder(loaded: EvalModel, label: str, pooling: str = "patch-mean") -> GlobalEncoder:
    """A tagalign-train checkpoint: training's preprocessing and the `pooling` image embedding
    (`tagalign_eval.pooling`; by default training's own)."""
    model = loaded.model
    pre = model.config.preprocessing
    resize = plain_transform(pre.image_size)

    def transform(image: Image.Image) -> torch.Tensor:
        return normalize(resize(image), pre.mean, pre.std)

    info = {**loaded.info, "pooling": pooling}
    return GlobalEncoder(
        label, info, transform, image_embedding_fn(model, pooling), model.encode_text
    )


def clip_encoder(loaded: EvalModel, label: str) -> GlobalEncoder:
    """The frozen CLIP itself: its own `encode_image` and open_clip's eval transform for it."""
    clip = loaded.model.clip
    cfg = PreprocessCfg(**clip.visual.preprocess_cfg)
    transform = image_transform_v2(cfg, is_train=False)
    return GlobalEncoder(label, loaded.info, transform, clip.encode_image, loaded.encode_text)


def load_encoders(
    checkpoint: str | Path | None,
    clip_model: str | None,
    pretrained: str | None,
    device: torch.device,
    pooling: str = "patch-mean",
) -> list[GlobalEncoder]:
    """The checkpoint's encoder (its `pooling`) and/or the plain CLIP's (`clip_model`: an
    open_clip name or `local-dir:DIR`, with `pretrained` weights: a tag, a file, or none), in
    that order."""
    if checkpoint is None and clip_model is None:
        raise EvalError("pass --checkpoint RUN, --clip-model NAME|local-dir:DIR, or both")
    check_pooling(pooling)
    encoders = []
    if checkpoint is not None:
        loaded = load_eval_model(str(checkpoint), device=device)
        encoders.append(checkpoint_encoder(loaded, Path(checkpoint).name, pooling))
    if clip_model is not None:
        loaded = load_eval_model(
            baseline="clip", model_name=clip_model, pretrained=pretrained, device=device
        )
        encoders.append(clip_encoder(loaded, f"CLIP {Path(clip_model).name}"))
    return encoders


class _ImageFiles(Dataset):
    """Model inputs of `paths`; a bad file's EvalError is returned, not raised, so it reaches
    the main process as the one-line error (a worker would wrap it in a traceback)."""

    def __init__(self, paths: Sequence[Path], transform: ImageTransform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor | EvalError:
        try:
            with opened(self.paths[i], "image", _TODO) as image:
                return self.transform(image.convert("RGB"))
        except EvalError as exc:
            return exc


def _collate(batch: list) -> list:
    return batch


def embed_images(
    encoder: GlobalEncoder,
    paths: Sequence[Path],
    *,
    device: torch.device,
    batch_size: int = 64,
    workers: int = 2,
    progress: bool = True,
    desc: str = "images",
) -> torch.Tensor:
    """L2-normalised embeddings [N, E] of the image files `paths`, on `device`; a missing or
    undecodable file is an `EvalError` naming it. The progress bar shows the rate and the ETA."""
    loader = DataLoader(
        _ImageFiles(paths, encoder.transform),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
    )
    out = []
    with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress) as bar:
        for batch in loader:
            for item in batch:
                if isinstance(item, EvalError):
                    raise item
            out.append(encoder.encode_images(torch.stack(batch).to(device)))
            bar.update(len(batch))
    return torch.cat(out)
