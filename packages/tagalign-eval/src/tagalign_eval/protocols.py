"""Named evaluation protocols: every setting that moves mIoU, in one frozen record.

The presets follow the published TagAlign evaluation code (mmseg configs + `generate_masks`):

- `tagalign-v1`: TCL-style sigmoid mask head `sigmoid(10*sim - 2.5)`, CLIP blend 0.3, stride 224,
  background constant 0.4 for every dataset with a background class (TagAlign's `main` branch).
- `tagalign-v3`: (its `dev` branch) softmax head `softmax(30*sim)`, CLIP blend 0.5, stride 56
  (Context59: 112), background constants 0.45 (VOC), 0.1 (Context, ImageNet-S300), 0.3
  (COCO-Object, ImageNet-S50); ImageNet-S images over 1000x1000 pixels are first downsampled to a
  long side of 1000 (`LoadImageNetSImageFromFile(downsample_large_image=True)`, both presets);
  ImageNet-S919 is read at short side 256 / long side 1024 with stride 224 (`imagenets919.py`).
- Both `tagalign-*` presets normalise with ImageNet's mean/std: every dataset config's
  `img_norm_cfg`, which the TagAlign model uses as given (it trains on the same statistics,
  `datasets/builder.py`, and never re-normalises inside).
- `sclip`: `wangf3014/SCLIP`'s `configs/cfg_*.py` and `clip_segmentor.py`: short side 336
  (COCO-Stuff 448, Cityscapes 560), CLIP's mean/std, 224 crops, stride 112, the 80 OpenAI
  ImageNet templates, raw similarities averaged over windows with `x logit_scale` and the softmax
  after upsampling, a prompted background (VOC, COCO-Object, Context) plus a probability
  threshold, VOC's area threshold 0.1, and multi-name classes from
  `datasets/classes/sclip_*_prompts.txt` (our own names: SCLIP ships its lists without a licence).

`docs/protocols.md` lists every value with the upstream file it comes from.

Per-dataset values are keyed by a benchmark's *family* (`voc`, `context`, `coco-object`, ...) so a
new benchmark in a known layout (e.g. a toy world in VOC layout) can inherit them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from tagparse.fieldoptions import ranges_of, settings_of
from tagparse.numbers import flag_name

from tagalign_eval.errors import EvalError
from tagalign_eval.limits import check_range
from tagalign_eval.protocol import (
    BACKGROUND_MODES,
    HEADS,
    NORMALIZATIONS,
    PRESETS,
    WINDOW_AVERAGES,
    Protocol,
)
from tagalign_eval.templates import DEFAULT_TEMPLATES, check_templates

__all__ = [
    "BACKGROUND_MODES",
    "HEADS",
    "NORMALIZATIONS",
    "OPENAI_TEMPLATES",
    "PRESETS",
    "STUFF_BACKGROUND",
    "WINDOW_AVERAGES",
    "Protocol",
    "per_family_prompts",
    "resolve_protocol",
]

OPENAI_TEMPLATES = tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)
"""CLIP's 80 ImageNet prompt templates (the list SCLIP's `prompts/imagenet_template.py` holds)."""

STUFF_BACKGROUND = (
    "sky", "wall", "tree", "grass", "ground", "road", "water", "sea", "mountain", "rock", "sand",
    "snow", "building", "cloud", "floor", "ceiling", "window", "door", "curtain", "fence",
    "shelf", "light", "wood", "field",
)  # fmt: skip
"""Our own stuff names that prompt the background class under `sclip` (SCLIP prompts a list of
its own, which it ships without a licence; see docs/protocols.md)."""


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
        "templates": DEFAULT_TEMPLATES,
        "normalize": "imagenet",
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
        "templates": DEFAULT_TEMPLATES,
        "normalize": "imagenet",
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
        "templates": OPENAI_TEMPLATES,
        "window_average": "similarities",
        "normalize": "clip",
    },
}

_IN_S919 = {"short_side": 256, "max_long_side": 1024, "stride": 224, "downsample_large": 1000}
"""TagAlign's `imagenets919.py` (both branches): img_scale (1024, 256), slide stride 224."""

# Per benchmark family; only families with a background class need a background value.
_PER_FAMILY: dict[str, dict[str, dict[str, Any]]] = {
    "tagalign-v1": {
        "imagenet-s": {"downsample_large": 1000},
        "imagenet-s300": {"downsample_large": 1000},
        "imagenet-s919": _IN_S919,
    },
    "tagalign-v3": {
        "voc": {"bg_thresh": 0.45},
        "context": {"bg_thresh": 0.1},
        "context59": {"stride": 112},
        "coco-object": {"bg_thresh": 0.3},
        "imagenet-s": {"bg_thresh": 0.3, "downsample_large": 1000},
        "imagenet-s300": {"bg_thresh": 0.1, "downsample_large": 1000},
        "imagenet-s919": {"bg_thresh": 0.3, **_IN_S919},
    },
    "sclip": {
        "voc": {
            "bg_thresh": 0.1,
            "scale": 65.0,
            "area_thresh": 0.1,
            "background_prompts": STUFF_BACKGROUND,
            "class_prompts": "sclip_voc",
        },
        "voc20": {"class_prompts": "sclip_voc"},
        "context": {"bg_thresh": 0.1, "scale": 50.0, "background_prompts": ("background",)},
        "coco-object": {
            "bg_thresh": 0.1,
            "scale": 50.0,
            "background_prompts": STUFF_BACKGROUND,
            "class_prompts": "sclip_coco_object",
        },
        "coco-stuff": {"short_side": 448},
        "cityscapes": {"short_side": 560},
    },
}

_TUPLES = ("templates", "background_prompts")
_FIELDS = {f.name for f in dataclasses.fields(Protocol)} - {"name"}


def per_family_prompts(name: str) -> dict[str, dict[str, Any]]:
    """Family -> the prompt settings (`background_prompts`, `class_prompts`) preset `name` gives
    that benchmark family only. They are tuned to a benchmark's class list, so a free-text class
    list (`predict`, no family) does not get them; `predict` says so when it matters."""
    keys = ("background_prompts", "class_prompts")
    out = {}
    for family, values in _PER_FAMILY.get(name, {}).items():
        prompts = {k: values[k] for k in keys if values.get(k)}
        if prompts:
            out[family] = prompts
    return out


def resolve_protocol(
    name: str, family: str | None = None, overrides: dict[str, Any] | None = None
) -> Protocol:
    """The preset `name`, its per-family values for `family`, then user `overrides` on top.

    `overrides` values of None are ignored, so CLI options can be passed through unfiltered.
    """
    if name not in PRESETS:
        raise EvalError(f"unknown protocol {name!r}; choose one of {', '.join(PRESETS)}")
    settings = dict(_BASE[name])
    settings.update(_PER_FAMILY[name].get(family or "", {}))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _FIELDS:
            raise EvalError(f"unknown protocol setting {key!r}")
        settings[key] = tuple(value) if key in _TUPLES else value
    protocol = Protocol(name=name, **settings)
    _validate(protocol)
    return protocol


def _validate(p: Protocol) -> None:
    for name, spec in settings_of(Protocol).items():
        value = getattr(p, name)
        if spec.choices is not None and value not in spec.choices:
            raise EvalError(
                f"{flag_name(name)} must be one of {', '.join(spec.choices)}, not {value!r}"
            )
    if p.normalize not in NORMALIZATIONS:
        raise EvalError(f"normalize must be one of {', '.join(NORMALIZATIONS)}")
    if p.window_average not in WINDOW_AVERAGES:
        raise EvalError(f"window_average must be one of {', '.join(WINDOW_AVERAGES)}")
    if p.window_average == "similarities" and p.clip_blend > 0:
        raise EvalError(
            "--clip-blend blends probabilities, which window_average 'similarities' only forms "
            "at full resolution; use --clip-blend 0 with this protocol"
        )
    if p.window_average == "similarities" and p.pamr:
        raise EvalError(
            "--pamr refines each window's class maps, which window_average 'similarities' does "
            "not form; drop --pamr with this protocol"
        )
    if not 0.0 <= p.area_thresh < 1.0:
        raise EvalError(f"area_thresh {p.area_thresh} must be in [0, 1); 0 turns it off")
    if p.downsample_large < 0:
        raise EvalError(f"downsample_large {p.downsample_large} must be >= 0; 0 turns it off")
    for name in ranges_of(Protocol):
        check_range(name, getattr(p, name))
    if p.stride > p.crop:
        raise EvalError(f"--stride {p.stride} is larger than --crop {p.crop}: pixels are skipped")
    check_templates(p.templates)
