"""The `Protocol` record: every setting that moves mIoU, with its help, range and choices.

Torch-free: the CLI builds the protocol flags from these fields at import (`tagparse.fieldoptions`),
and the API checks the same ranges and choices, so one new setting is one field here (plus its
values in the presets of `protocols.py`, which also say where each value comes from).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tagparse.fieldoptions import setting
from tagparse.numbers import Range

HEADS = ("sigmoid", "softmax")
BACKGROUND_MODES = ("constant", "threshold")
WINDOW_AVERAGES = ("probabilities", "similarities")
NORMALIZATIONS = ("model", "clip", "imagenet")
"""`model`: the evaluated model's own mean/std; `clip`: OpenAI CLIP's; `imagenet`: ImageNet's."""
PRESETS = ("tagalign-v1", "tagalign-v3", "sclip")
"""The named protocols (`--protocol`); their values are `protocols.py`'s."""

_SIDE = Range(1, 2**16)


@dataclass(frozen=True)
class Protocol:
    """All knobs of one evaluation run; `to_dict()` is written into every result file.

    The fields declared with `setting` are also the protocol flags of every segmentation command
    (`--short-side`, `--head`, ...), which override the preset's value when given."""

    name: str
    short_side: int = setting(help="Keep-ratio resize of the short side.", range=_SIDE)
    """mmseg's `img_scale=(long cap, short side)`."""
    max_long_side: int = setting(help="Cap on the long side after resizing.", range=_SIDE)
    """The scale is the smaller of the two ratios."""
    crop: int = setting(help="Sliding-window crop size.", range=_SIDE)
    stride: int = setting(help="Sliding-window stride.", range=_SIDE)
    """Windows overlap by `crop - stride` and are averaged (mmseg slide)."""
    head: str = setting(help="Mask head.", choices=HEADS)
    """`sigmoid`: p = sigmoid(scale*sim + bias) per class; `softmax`: p = softmax(scale*sim)."""
    scale: float = setting(help="Similarity scale of the mask head.", range=Range(0, low_open=True))
    bias: float = setting(help="Bias of the sigmoid head.", range=Range())
    clip_blend: float = setting(help="Weight of the training-free CLIP path.", range=Range(0, 1))
    """p = (1 - w) * p_trained + w * p_clip, with p_clip from the training-free dense path."""
    background: str = setting(help="Background mode.", choices=BACKGROUND_MODES)
    """`constant`: a background score `bg_thresh` competes in the argmax (TagAlign);
    `threshold`: pixels whose max class probability < `bg_thresh` become background (SCLIP)."""
    bg_thresh: float = setting(help="Background constant or threshold.", range=Range(0, 1))
    pamr: bool = setting(help="PAMR post-processing.")
    """Pixel-adaptive mask refinement of each crop's class maps (off in the "no post" rows)."""
    templates: tuple[str, ...] = setting(
        help="Prompt template with {} (repeat to ensemble).", flag="--template"
    )
    """Class embeddings are the normalised mean over templates."""
    window_average: str = "probabilities"
    """`probabilities`: each window's head output is averaged (mmseg/TagAlign); `similarities`:
    raw cosine similarities are averaged and the head runs once at full resolution (SCLIP)."""
    area_thresh: float = 0.0
    """A foreground class whose argmax area is at most this share of all foreground pixels is
    suppressed (its probability zeroed) before the final argmax (SCLIP's `area_thd`); 0: off."""
    downsample_large: int = 0
    """Images with more than N*N pixels are first resized to a long side of N (bilinear) and
    predicted there; the label map is resized back (nearest) to the mask (TagAlign ImageNet-S)."""
    background_prompts: tuple[str, ...] = ()
    """Text prompts of a class list's protocol background, scored as a class (SCLIP); () keeps
    the background a constant or threshold only."""
    normalize: str = "model"
    """Image mean/std: `model` (the model's own), `clip` (OpenAI CLIP's, as SCLIP's
    `SegDataPreProcessor`) or `imagenet` (mmseg's `img_norm_cfg`)."""
    class_prompts: str = ""
    """A builtin prompt map (`datasets/classes/<name>_prompts.txt`) giving some classes other or
    extra names (`sclip_voc`); "" for none."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["templates"] = list(self.templates)
        d["background_prompts"] = list(self.background_prompts)
        return d
