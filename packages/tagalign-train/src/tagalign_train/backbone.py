"""Load any open_clip model (hub tag, local file, `local-dir:`) as a frozen backbone.

The tiny configs shipped in `model_configs/` are registered here, so every module that loads a
backbone (trainer, evaluator, tests) sees them.
"""

from __future__ import annotations

import difflib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from torch import nn

from tagalign_train.errors import TrainError

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
open_clip.add_model_config(MODEL_CONFIG_DIR)

#: `--pretrained` values that mean "random weights" (tests, toy worlds, architecture checks).
RANDOM_WEIGHTS = ("", "none", "random")


@dataclass
class Backbone:
    """A frozen open_clip CLIP with the tokenizer that matches its text tower."""

    clip: nn.Module
    tokenizer: object
    model_name: str
    pretrained: str


def is_random(pretrained: str | None) -> bool:
    """Whether `--pretrained` asks for randomly initialised towers."""
    return pretrained is None or pretrained.lower() in RANDOM_WEIGHTS


def _unknown_model(name: str) -> TrainError:
    close = difflib.get_close_matches(name, open_clip.list_models(), n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else "see `open_clip.list_models()`"
    return TrainError(f"unknown model {name!r}; {hint}")


def resolve_pretrained(model_name: str, pretrained: str | None) -> tuple[str | None, bool]:
    """Return (what to pass to open_clip, whether QuickGELU is needed).

    OpenAI's weights were trained with QuickGELU; open_clip only warns when a plain config gets
    them, so we read the tag's own setting and force it.
    """
    if is_random(pretrained):
        return None, False
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if tag_cfg:
        return pretrained, bool(tag_cfg.get("quick_gelu", False))
    if os.path.isfile(pretrained):
        return str(Path(pretrained).resolve()), False
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    known = (
        f"known tags for {model_name}: {', '.join(tags)}" if tags else "no hub tags for this model"
    )
    raise TrainError(f"--pretrained {pretrained!r} is neither a weights file nor a tag ({known})")


def _not_weights(model_name: str, pretrained: str | None, exc: Exception) -> TrainError:
    """The line for a file that is not weights of `model_name` (or a failed download)."""
    text = str(exc).strip()
    first = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
    return TrainError(
        f"could not load {model_name} with weights {pretrained!r} ({first}); pass "
        f"{model_name} weights saved by open_clip or torch, a hub tag, or none"
    )


def load_backbone(
    model_name: str,
    pretrained: str | None,
    device: str | torch.device = "cpu",
    init_seed: int | None = None,
) -> Backbone:
    """Build the CLIP model, load its weights, and freeze both towers (no grad, eval mode).

    Random towers (`pretrained` none) are drawn after `torch.manual_seed(init_seed)` when a seed
    is given, so the same seed rebuilds the same towers (open_clip builds on the CPU before
    moving to `device`); that seeds torch's global generator, as the call's name says.
    """
    local = None
    if model_name.startswith(open_clip.factory.LOCAL_DIR_PREFIX):
        local = model_name[len(open_clip.factory.LOCAL_DIR_PREFIX) :]
        if not Path(local, "open_clip_config.json").is_file():
            raise TrainError(f"{local}: not an open_clip local dir (open_clip_config.json missing)")
        weights, quick_gelu = None, False
    else:
        if model_name not in open_clip.list_models():
            raise _unknown_model(model_name)
        weights, quick_gelu = resolve_pretrained(model_name, pretrained)
        if weights is None and init_seed is not None:
            torch.manual_seed(init_seed)
    try:
        clip = open_clip.create_model(
            model_name, pretrained=weights, force_quick_gelu=quick_gelu, device=device
        )
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not a pickle at all: not weights
            raise _not_weights(model_name, pretrained, exc) from exc
        # torch.load(weights_only=True) refused a pickle that names code (a class or function)
        source = local if local is not None else pretrained
        raise TrainError(
            f"{source}: the weights file is a pickle holding objects other than tensors, which "
            "could run code when loaded, so it was not loaded; convert it to safetensors "
            "(safetensors.torch.save_file(state_dict, 'open_clip_model.safetensors')) from a "
            "copy you trust"
        ) from exc
    except Exception as exc:  # a download failure, or a file that is not weights for this model
        if not (isinstance(exc, RuntimeError) or (weights and os.path.isfile(weights))):
            raise
        raise _not_weights(model_name, pretrained, exc) from exc
    clip.requires_grad_(False)
    clip.eval()
    recorded = weights if weights and os.path.isfile(weights) else (pretrained or "none")
    return Backbone(clip, open_clip.get_tokenizer(model_name), model_name, recorded)
