"""What a run can be asked to do: `TrainConfig`, the presets and every choice the CLI offers.

This module imports no torch, so `tagalign-train --help` answers at once and the CLI's
`click.Choice` lists are these constants, not copies of them. The modules that implement a
choice (dense.py, projector.py, losses.py, text.py, data.py) import its names from here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from tagparse.numbers import Range, flag_name

from tagalign_train.errors import TrainError

#: The paper's recipe (512 per GPU on 8 GPUs = 4096, lr 1e-3 at 4096) and a CPU toy.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "model": "ViT-B-16",
        "pretrained": "openai",
        "batch_size": 512,
        "steps": 30001,
        "lr": 1e-3,
        "image_size": 224,
        "save_every": 1000,
        "log_every": 50,
    },
    "toy": {
        "model": "tagalign-tiny-ViT",
        "pretrained": "none",
        "batch_size": 32,
        "steps": 200,
        "lr": 0.1,
        "image_size": 64,
        "save_every": 50,
        "log_every": 10,
    },
}
#: `--lr` is the learning rate at this global batch; the run scales it linearly.
REFERENCE_BATCH = 4096

#: How the frozen ViT's last block(s) give patch tokens (dense.py; docs/dense-methods.md).
DENSE_METHODS = ("surgery", "maskclip", "sclip", "clearclip", "naclip", "none")
PROJECTORS = ("conv", "transformer", "identity")
TAG_LOSSES = ("softmax", "bce", "asymmetric", "balanced")
TAG_SOFTMAX = ("joint", "per-kind")
UNLABELED = ("skip", "keep")
#: Where images are decoded and cropped: the data workers (paper recipe) or the GPU (gpu_decode.py).
DECODE_ON = ("cpu", "gpu")
#: `--tag-kinds` -> the tags.db kinds it trains on, in this order.
KIND_FLAGS = {"objects": ["object"], "attributes": ["attribute"], "both": ["object", "attribute"]}

#: The one default prompt template of the project (training, segmentation and classification).
DEFAULT_TEMPLATES = ("a photo of a {}.",)
#: The 7-template subset OpenAI recommends for ImageNet zero-shot (CLIP notebook): open_clip's
#: `zero_shot_metadata.SIMPLE_IMAGENET_TEMPLATES`, written out because importing open_clip
#: imports torch and this module must not (`--help` answers at once); a test keeps them equal.
ENSEMBLE_TEMPLATES = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
TEMPLATE_SETS = {"single": DEFAULT_TEMPLATES, "ensemble": ENSEMBLE_TEMPLATES}

#: `--report-to` trackers (open_clip's names; "all" is every one) -> the module each needs, which
#: the tagalign-train extra of the same name installs.
REPORTERS = {"tensorboard": "tensorboard", "wandb": "wandb"}


def parse_report_to(value: str) -> tuple[str, ...]:
    """`--report-to tensorboard,wandb` as tracker names, as open_clip reads it: comma-separated,
    "all" for every tracker, empty for none. TrainError names an unknown tracker, and a known
    one whose package is not installed with the extra that installs it."""
    names: list[str] = []
    for name in (part.strip() for part in value.split(",")):
        chosen = list(REPORTERS) if name == "all" else [name] if name else []
        if name and name != "all" and name not in REPORTERS:
            raise TrainError(
                f"--report-to {value}: unknown tracker {name!r}; choose from "
                f"{', '.join(REPORTERS)} or all (comma-separated)"
            )
        names += [n for n in chosen if n not in names]
    for name in names:
        if importlib.util.find_spec(REPORTERS[name]) is None:
            raise TrainError(
                f"--report-to {name}: the {name} package is not installed; install it with "
                f"`pip install 'tagalign-train[{name}]'` or leave {name} out of --report-to"
            )
    return tuple(names)


#: Every numeric TrainConfig field and what it accepts (tagparse's `Range`, shared by the three
#: CLIs); the CLI's options and `TrainConfig.resolved` (the Python API) both check against it.
#: Every integer has an upper bound too (a count of 2**63 is a typo, and it overflows in torch).
NUMERIC_BOUNDS: dict[str, Range] = {
    "steps": Range(1, high=10**9),
    "batch_size": Range(1, high=2**20),
    "lr": Range(0, low_open=True),
    "image_size": Range(1, high=8192),
    "save_every": Range(1, high=10**9),
    "log_every": Range(1, high=10**9),
    "tag_weight": Range(0),
    "itc_weight": Range(0),
    "attribute_weight": Range(0),
    "workers": Range(0, high=1024),
    "seed": Range(0, high=2**32 - 1),  # numpy's seed range
    "accum": Range(1, high=2**16),
    "keep_last": Range(0, high=10**6),  # 0 keeps every checkpoint
    "weight_decay": Range(0),
    "grad_clip": Range(0, low_open=True),
}


#: Settings a resumed run must share with the checkpoint it continues ("continue exactly"):
#: they shape the model's input or the optimisation. Length, logging, saving and workers may
#: change; model, weights, dense method, projector and tag kinds are compared on their own.
RESUME_MUST_MATCH = (
    "image_size",
    "batch_size",
    "accum",
    "lr",
    "seed",
    "tag_weight",
    "itc_weight",
    "attribute_weight",
    "tag_loss",
    "tag_softmax",
    "templates",
    "unlabeled",
    "weight_decay",
    "grad_clip",
)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run; `None` fields take the preset's value (see `resolved`)."""

    labels: str
    data: list[str]
    out: str
    preset: str = "paper"
    model: str | None = None
    pretrained: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    image_size: int | None = None
    save_every: int | None = None
    log_every: int | None = None
    dense: str = "surgery"
    projector: str = "conv"
    tag_weight: float = 1.0
    itc_weight: float = 1.0
    #: the attribute tags' part of the tag loss is weighted by this, the objects' part by 1
    attribute_weight: float = 1.0
    tag_kinds: str = "both"
    tag_loss: str = "softmax"
    tag_softmax: str = "joint"
    templates: str = "single"
    workers: int = 2
    decode_on: str = "cpu"
    seed: int = 0
    resume: bool = False
    accum: int = 1
    keep_last: int = 3
    cache_features: str | None = None
    unlabeled: str = "skip"
    csv_root: str | None = None
    text_cache: str | None = None
    weight_decay: float = 0.05
    grad_clip: float = 5.0
    report_to: str = ""
    wandb_project_name: str = "tagalign-train"
    progress: bool = True

    def resolved(self) -> TrainConfig:
        """The preset filled in and the choices checked; TrainError names the bad flag."""
        if self.preset not in PRESETS:
            raise TrainError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        preset = {k: v for k, v in PRESETS[self.preset].items() if getattr(self, k) is None}
        if self.tag_kinds not in KIND_FLAGS:
            raise TrainError(
                f"--tag-kinds must be one of {', '.join(KIND_FLAGS)}, got {self.tag_kinds!r}"
            )
        if self.tag_softmax not in TAG_SOFTMAX:
            raise TrainError("--tag-softmax must be joint or per-kind")
        if self.decode_on not in DECODE_ON:
            raise TrainError(f"--decode-on must be one of {', '.join(DECODE_ON)}")
        if self.templates not in TEMPLATE_SETS:
            raise TrainError(f"--templates must be one of {', '.join(TEMPLATE_SETS)}")
        resolved = replace(self, **preset)
        for name, bounds in NUMERIC_BOUNDS.items():
            refusal = bounds.refusal(flag_name(name), getattr(resolved, name))
            if refusal is not None:
                raise TrainError(refusal)
        if resolved.tag_weight == 0 and resolved.itc_weight == 0:
            raise TrainError("--tag-weight and --itc-weight are both 0: nothing would train")
        parse_report_to(resolved.report_to)
        return resolved

    @property
    def reporters(self) -> tuple[str, ...]:
        """The trackers `report_to` names (see parse_report_to)."""
        return parse_report_to(self.report_to)

    @property
    def kinds(self) -> list[str]:
        """The tags.db kinds `tag_kinds` selects."""
        return KIND_FLAGS[self.tag_kinds]

    def recorded(self) -> dict[str, Any]:
        """The settings as config.json records them (display-only ones left out)."""
        return {k: v for k, v in asdict(self).items() if k != "progress"}

    @classmethod
    def from_recorded(cls, recorded: dict[str, Any]) -> TrainConfig:
        """The settings config.json recorded. Keys this version does not know (a newer trainer's)
        are ignored; a setting newer than the file takes its default, which is the behaviour
        the run had before the setting existed. A missing `labels`/`data`/`out` is a TypeError
        (read_config calls the file malformed)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in recorded.items() if k in known})
