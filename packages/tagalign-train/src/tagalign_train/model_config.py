"""The typed contents of a checkpoint's config.json: model, preprocessing, vocabulary, run.

config.json stays a readable JSON file; these frozen dataclasses are its only readers and
writers, so nothing else indexes it by string key. Format history (`format_version`):

- v1: one flat object (model fields, `preprocessing`, `vocab_fingerprint`, `tag_kinds`, `vocab`,
  `train`, `world_size`, `global_batch`, `effective_lr`, `step` side by side).
- v2: one section per dataclass: `model` (with its `preprocessing`), `vocab`, `train`, and the
  run's `step`, `world_size`, `global_batch`, `effective_lr`.
- v3: `model.init_seed`, the seed the random frozen towers of a `--pretrained none` model were
  drawn with (null for pretrained weights).

v1 and v2 files are read as they are (runs written before still load and resume); files are
always written as the current version. A v1/v2 model on random towers recorded no seed, so it
cannot be rebuilt and is refused (`model.model_from_config`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tagalign_train.config import TrainConfig

FORMAT = "tagalign-train"
FORMAT_VERSION = 3


@dataclass(frozen=True)
class Preprocessing:
    """How images are prepared for the model: square training size and channel mean/std."""

    image_size: int
    normalization: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "normalization": self.normalization,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(int(d["image_size"]), d["normalization"], tuple(d["mean"]), tuple(d["std"]))


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a TagAlignModel (the trainable weights aside)."""

    name: str
    pretrained: str
    dense: str
    surgery_blocks: int
    projector: str
    width: int
    embed_dim: int
    patch_size: int
    preprocessing: Preprocessing
    #: Seed of the random frozen towers (`pretrained` none); None for pretrained weights. A
    #: seed, not the towers themselves: a checkpoint holds the trainable weights only, and the
    #: frozen CLIP of a real model would multiply its size for what a few bytes reproduce.
    init_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pretrained": self.pretrained,
            "dense": self.dense,
            "surgery_blocks": self.surgery_blocks,
            "projector": self.projector,
            "width": self.width,
            "embed_dim": self.embed_dim,
            "patch_size": self.patch_size,
            "preprocessing": self.preprocessing.to_dict(),
            "init_seed": self.init_seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], name_key: str = "name") -> ModelConfig:
        """`name_key` is "model" in a v1 file, where the model fields sat at the top level."""
        return cls(
            name=d[name_key],
            pretrained=d["pretrained"],
            dense=d["dense"],
            surgery_blocks=int(d["surgery_blocks"]),
            projector=d["projector"],
            width=int(d["width"]),
            embed_dim=int(d["embed_dim"]),
            patch_size=int(d["patch_size"]),
            preprocessing=Preprocessing.from_dict(d["preprocessing"]),
            init_seed=None if d.get("init_seed") is None else int(d["init_seed"]),
        )


@dataclass(frozen=True)
class VocabInfo:
    """The tag vocabulary a model was trained on: tags.db's fingerprint and the tags per kind."""

    fingerprint: str
    kinds: tuple[str, ...]
    tags: dict[str, list[str]]

    @property
    def tag_list(self) -> list[str]:
        """All tags in training order: kind by kind, each kind in vocabulary order."""
        return [t for k in self.kinds for t in self.tags[k]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "kinds": list(self.kinds),
            "tags": {k: list(v) for k, v in self.tags.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VocabInfo:
        return cls(d["fingerprint"], tuple(d["kinds"]), {k: list(v) for k, v in d["tags"].items()})


@dataclass(frozen=True)
class CheckpointConfig:
    """config.json: the model, the vocabulary and settings it was trained with, and the run.

    `vocab` and `train` are None for a checkpoint written outside the trainer (tests, tools);
    `train` is the run's resolved `TrainConfig` (its preset filled in).
    """

    model: ModelConfig
    vocab: VocabInfo | None = None
    train: TrainConfig | None = None
    step: int = 0
    world_size: int = 1
    global_batch: int | None = None
    effective_lr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "step": self.step,
            "model": self.model.to_dict(),
            "vocab": self.vocab.to_dict() if self.vocab else None,
            "train": self.train.recorded() if self.train else None,
            "world_size": self.world_size,
            "global_batch": self.global_batch,
            "effective_lr": self.effective_lr,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckpointConfig:
        """Either format version; raises KeyError/TypeError/ValueError on a malformed file."""
        if int(d.get("format_version", 0)) < 2:
            return _from_v1(d)
        vocab = d.get("vocab")
        return cls(
            model=ModelConfig.from_dict(d["model"]),
            vocab=VocabInfo.from_dict(vocab) if vocab else None,
            train=_train(d.get("train")),
            step=int(d.get("step", 0)),
            world_size=int(d.get("world_size", 1)),
            global_batch=d.get("global_batch"),
            effective_lr=d.get("effective_lr"),
        )

    @classmethod
    def from_json(cls, text: str) -> CheckpointConfig:
        """Parse config.json text of either version (checkpoint.read_config checks the format
        name and version first and turns a malformed file into a one-line TrainError)."""
        return cls.from_dict(json.loads(text))


def _train(recorded: Any) -> TrainConfig | None:
    if not recorded:
        return None
    if not isinstance(recorded, dict):
        raise TypeError(f"'train' is a {type(recorded).__name__}, not an object of settings")
    return TrainConfig.from_recorded(recorded)


def _from_v1(d: dict[str, Any]) -> CheckpointConfig:
    vocab = None
    if "vocab_fingerprint" in d:
        vocab = VocabInfo(d["vocab_fingerprint"], tuple(d["tag_kinds"]), dict(d["vocab"]))
    return CheckpointConfig(
        model=ModelConfig.from_dict(d, name_key="model"),
        vocab=vocab,
        train=_train(d.get("train")),
        step=int(d.get("step", 0)),
        world_size=int(d.get("world_size", 1)),
        global_batch=d.get("global_batch"),
        effective_lr=d.get("effective_lr"),
    )
