"""Named evaluation protocols: every setting that moves mIoU, in one frozen record.

The presets follow the published TagAlign evaluation code (mmseg configs + `generate_masks`):

- `tagalign-v1`: TCL-style sigmoid mask head `sigmoid(10*sim - 2.5)`, CLIP blend 0.3, stride 224,
  background constant 0.4 for every dataset with a background class.
- `tagalign-v3`: softmax head `softmax(30*sim)` over the class names, CLIP blend 0.5, stride 56
  (Context59: 112), background constants 0.45 (VOC), 0.1 (Context), 0.3 (COCO-Object, ImageNet-S).
- `sclip`: SCLIP's protocol: short side 336, 224 crops, stride 112, softmax head, background where
  the averaged max class probability is below a per-dataset threshold.

Per-dataset values are keyed by a benchmark's *family* (`voc`, `context`, `coco-object`, ...) so a
new benchmark in a known layout (e.g. a toy world in VOC layout) can inherit them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tagalign_eval.errors import EvalError
from tagalign_eval.limits import check_range

HEADS = ("sigmoid", "softmax")
BACKGROUND_MODES = ("constant", "threshold")


@dataclass(frozen=True)
class Protocol:
    """All knobs of one evaluation run; `to_dict()` is written into every result file."""

    name: str
    short_side: int
    """Keep-ratio resize target of the short side (mmseg `img_scale=(long cap, short side)`)."""
    max_long_side: int
    """Cap on the long side after resizing; the scale is the smaller of the two ratios."""
    crop: int
    """Sliding-window crop size (square)."""
    stride: int
    """Sliding-window stride; windows overlap by `crop - stride` and are averaged (mmseg slide)."""
    head: str
    """`sigmoid`: p = sigmoid(scale*sim + bias) per class; `softmax`: p = softmax(scale*sim)."""
    scale: float
    bias: float
    clip_blend: float
    """p = (1 - w) * p_trained + w * p_clip, with p_clip from the training-free dense path."""
    background: str
    """`constant`: a background score `bg_thresh` competes in the argmax (TagAlign);
    `threshold`: pixels whose max class probability < `bg_thresh` become background (SCLIP)."""
    bg_thresh: float
    pamr: bool
    """Pixel-adaptive mask refinement of each crop's class maps (off in the "no post" rows)."""
    templates: tuple[str, ...]
    """Prompt templates; class embeddings are the normalised mean over templates."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["templates"] = list(self.templates)
        return d


_BASE: dict[str, dict[str, Any]] = {
    "tagalign-v1": {
        "short_side": 448,
        "max_long_side": 2048,
        "crop": 448,
        "stride": 224,
        "head": "sigmoid",
        "scale": 10.0,
        "bias": -2.5,
        "clip_blend": 0.3,
        "background": "constant",
        "bg_thresh": 0.4,
        "pamr": False,
        "templates": ("a photo of a {}.",),
    },
    "tagalign-v3": {
        "short_side": 448,
        "max_long_side": 2048,
        "crop": 448,
        "stride": 56,
        "head": "softmax",
        "scale": 30.0,
        "bias": 0.0,
        "clip_blend": 0.5,
        "background": "constant",
        "bg_thresh": 0.3,
        "pamr": False,
        "templates": ("a photo of a {}.",),
    },
    "sclip": {
        "short_side": 336,
        "max_long_side": 2048,
        "crop": 224,
        "stride": 112,
        "head": "softmax",
        "scale": 40.0,
        "bias": 0.0,
        "clip_blend": 0.0,
        "background": "threshold",
        "bg_thresh": 0.0,
        "pamr": False,
        "templates": ("a photo of a {}.",),
    },
}

# Per benchmark family; only families with a background class need a background value.
_PER_FAMILY: dict[str, dict[str, dict[str, Any]]] = {
    "tagalign-v1": {},
    "tagalign-v3": {
        "voc": {"bg_thresh": 0.45},
        "context": {"bg_thresh": 0.1},
        "context59": {"stride": 112},
        "coco-object": {"bg_thresh": 0.3},
        "imagenet-s": {"bg_thresh": 0.3},
    },
    "sclip": {
        "voc": {"bg_thresh": 0.1, "scale": 65.0},
        "context": {"bg_thresh": 0.1, "scale": 50.0},
        "coco-object": {"bg_thresh": 0.1, "scale": 50.0},
    },
}

PRESETS = tuple(_BASE)
_NUMERIC = (
    "short_side",
    "max_long_side",
    "crop",
    "stride",
    "scale",
    "bias",
    "clip_blend",
    "bg_thresh",
)
"""The `Protocol` fields range-checked through `limits.RANGES`."""


def resolve_protocol(
    name: str, family: str | None = None, overrides: dict[str, Any] | None = None
) -> Protocol:
    """The preset `name`, its per-family values for `family`, then user `overrides` on top.

    `overrides` values of None are ignored, so CLI options can be passed through unfiltered.
    """
    if name not in _BASE:
        raise EvalError(f"unknown protocol {name!r}; choose one of {', '.join(PRESETS)}")
    settings = dict(_BASE[name])
    settings.update(_PER_FAMILY[name].get(family or "", {}))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in settings:
            raise EvalError(f"unknown protocol setting {key!r}")
        settings[key] = tuple(value) if key == "templates" else value
    protocol = Protocol(name=name, **settings)
    _validate(protocol)
    return protocol


def _validate(p: Protocol) -> None:
    if p.head not in HEADS:
        raise EvalError(f"--head must be one of {', '.join(HEADS)}, not {p.head!r}")
    if p.background not in BACKGROUND_MODES:
        raise EvalError(f"--background must be one of {', '.join(BACKGROUND_MODES)}")
    for name in _NUMERIC:
        check_range(name, getattr(p, name))
    if p.stride > p.crop:
        raise EvalError(f"--stride {p.stride} is larger than --crop {p.crop}: pixels are skipped")
    if not p.templates or any("{}" not in t for t in p.templates):
        raise EvalError("every --template must contain '{}' where the class name goes")
    for template in p.templates:
        try:
            template.format("cat")
        except (KeyError, IndexError, ValueError) as exc:
            raise EvalError(
                f"--template {template!r} is not a format string with one {{}} ({exc!r}); "
                "write a literal brace as {{ or }}"
            ) from None
