"""TagAlignModel: frozen CLIP dense tokens -> trainable projector -> trainable copy of ln_post/proj.

This is the API shared with tagalign-eval (see the contract in the repository notes):
`build_model`, `checkpoint.load_checkpoint`, and `TagAlignModel.dense_embeddings[_with_baseline]`,
`encode_text`, `encode_image`, `image_mean`, `image_std`, `patch_size`, `config` (a ModelConfig).
"""

from __future__ import annotations

import copy

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from tagalign_train.backbone import Backbone, is_random, load_backbone
from tagalign_train.dense import DenseFeatures
from tagalign_train.errors import TrainError
from tagalign_train.model_config import ModelConfig, Preprocessing
from tagalign_train.preprocess import NORMALIZATIONS
from tagalign_train.projector import make_projector

TEXT_BATCH = 256


def _head(ln: nn.Module, proj: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """ln_post + proj applied per patch: [B,C,h,w] -> [B,E,h,w]."""
    b, _, h, w = feats.shape
    t = ln(feats.flatten(2).transpose(1, 2)) @ proj
    return t.transpose(1, 2).reshape(b, -1, h, w)


class TagAlignModel(nn.Module):
    """Frozen open_clip backbone + trainable projector head; saves `trainable_state_dict` only."""

    def __init__(self, backbone: Backbone, config: ModelConfig):
        super().__init__()
        self.clip = backbone.clip
        self.tokenizer = backbone.tokenizer
        self.config = config
        visual = self.clip.visual
        self.dense = DenseFeatures(visual, config.dense, config.surgery_blocks)
        heads = visual.transformer.resblocks[0].attn.num_heads
        self.projector = make_projector(config.projector, self.dense.width, heads)
        # Trainable copies of the frozen head; the frozen originals give the baseline path.
        self.head_ln = copy.deepcopy(visual.ln_post).requires_grad_(True)
        self.head_proj = nn.Parameter(visual.proj.detach().clone())
        self.image_mean: tuple[float, ...] = config.preprocessing.mean
        self.image_std: tuple[float, ...] = config.preprocessing.std
        self.patch_size: int = self.dense.patch_size

    def train(self, mode: bool = True) -> TagAlignModel:
        """The CLIP towers stay in eval mode whatever the caller asks."""
        super().train(mode)
        self.clip.eval()
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("clip.")}

    def load_trainable_state_dict(self, weights: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.startswith("clip.")]
        if missing or unexpected:
            raise TrainError(
                f"checkpoint weights do not fit the model (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )

    @torch.no_grad()
    def backbone_features(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen dense tokens before ln_post, [B,C,h,w]."""
        return self.dense(images)

    def project_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Trained path from (possibly cached) backbone tokens to [B,E,h,w]."""
        return _head(self.head_ln, self.head_proj, self.projector(feats))

    def baseline_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Training-free path: frozen ln_post + proj on the backbone tokens."""
        return _head(self.clip.visual.ln_post, self.clip.visual.proj, feats)

    def dense_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        return self.project_features(self.backbone_features(images))

    def dense_embeddings_with_baseline(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone_features(images)
        with torch.no_grad():
            baseline = self.baseline_features(feats)
        return self.project_features(feats), baseline

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Mean of the projected patch embeddings (TagAlign's image embedding), not normalised."""
        return self.dense_embeddings(images).mean(dim=(2, 3))

    @torch.no_grad()
    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """L2-normalised text embeddings of already tokenized text, [N,E]."""
        return F.normalize(self.clip.encode_text(tokens.to(self.head_proj.device)).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised embeddings from the frozen text tower, [N,E]."""
        out = [
            self.encode_tokens(self.tokenizer(list(texts[i : i + TEXT_BATCH])))
            for i in range(0, len(texts), TEXT_BATCH)
        ]
        if not out:
            return torch.zeros(0, self.head_proj.shape[1], device=self.head_proj.device)
        return torch.cat(out)


def model_config(
    model_name: str,
    pretrained: str | None,
    dense: str,
    projector: str,
    *,
    surgery_blocks: int,
    image_size: int,
    normalization: str,
    clip: nn.Module,
    init_seed: int | None = None,
) -> ModelConfig:
    """The model part of config.json (the trainer adds vocabulary, step and training settings)."""
    if normalization not in NORMALIZATIONS:
        raise TrainError(
            f"unknown normalization {normalization!r}; choose {', '.join(NORMALIZATIONS)}"
        )
    patch_size = int(clip.visual.conv1.kernel_size[0])
    if image_size < patch_size:
        raise TrainError(
            f"--image-size {image_size} is smaller than one {patch_size}-pixel patch of "
            f"{model_name}; pass at least {patch_size} (the model's own size is "
            f"{int(clip.visual.image_size[0])})"
        )
    mean, std = NORMALIZATIONS[normalization]
    return ModelConfig(
        name=model_name,
        pretrained=pretrained or "none",
        dense=dense,
        surgery_blocks=surgery_blocks,
        projector=projector,
        width=clip.visual.conv1.out_channels,
        embed_dim=int(clip.visual.proj.shape[1]),
        patch_size=patch_size,
        preprocessing=Preprocessing(image_size, normalization, tuple(mean), tuple(std)),
        init_seed=init_seed,
    )


def build_model(
    model_name: str,
    pretrained: str | None,
    dense: str = "surgery",
    projector: str = "conv",
    *,
    surgery_blocks: int = 6,
    image_size: int | None = None,
    normalization: str = "imagenet",
    init_seed: int = 0,
    device: str | torch.device = "cpu",
) -> TagAlignModel:
    """A fresh model; with `projector="identity"` (or any freshly initialised projector) it is the
    training-free baseline.

    Random towers (`pretrained` none) are drawn with `init_seed`, which config.json records so
    that a checkpoint rebuilds them exactly; this seeds torch's generator (see load_backbone):
    the trainer passes its --seed, which it has just seeded with, so its stream is unchanged.
    """
    random_towers = is_random(pretrained) and not _local_dir(model_name)
    backbone = load_backbone(
        model_name, pretrained, device=device, init_seed=init_seed if random_towers else None
    )
    size = int(backbone.clip.visual.image_size[0]) if image_size is None else image_size
    config = model_config(
        model_name,
        backbone.pretrained,
        dense,
        projector,
        surgery_blocks=surgery_blocks,
        image_size=size,
        normalization=normalization,
        clip=backbone.clip,
        init_seed=init_seed if random_towers else None,
    )
    return TagAlignModel(backbone, config).to(device)


def model_from_config(
    config: ModelConfig, device: str | torch.device = "cpu", *, source: object = "checkpoint"
) -> TagAlignModel:
    """The architecture `config` describes, with fresh projector weights (load them after).

    Random towers are redrawn from the recorded `init_seed` inside a forked RNG, so loading a
    checkpoint leaves the caller's generators alone. A config from before seeds were recorded
    (v1/v2) on random towers cannot be rebuilt: refused, naming `source`, rather than evaluated
    on different towers at every load.
    """
    if is_random(config.pretrained) and not _local_dir(config.name):
        if config.init_seed is None:
            raise TrainError(
                f"{source}: trained on random frozen towers (--pretrained "
                f"{config.pretrained}) by a tagalign-train that did not record their seed, so "
                "they cannot be rebuilt; retrain it with this tagalign-train"
            )
        cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=cuda):
            backbone = load_backbone(config.name, config.pretrained, device, config.init_seed)
    else:
        backbone = load_backbone(config.name, config.pretrained, device=device)
    return TagAlignModel(backbone, config).to(device)


def _local_dir(model_name: str) -> bool:
    """An open_clip `local-dir:` model brings its own weights whatever `pretrained` says."""
    return model_name.startswith(open_clip.factory.LOCAL_DIR_PREFIX)
