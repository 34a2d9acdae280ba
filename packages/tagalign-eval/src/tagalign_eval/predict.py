"""Single-image prediction with any free-text class list (attribute-specified classes included).

The classes are prompted as a benchmark's are (`protocol_classes`: the protocol's background
prompts and prompt map, when it has them). A preset's per-benchmark prompts (sclip's stuff
background on VOC, its VOC prompt map) need a benchmark and are not applied to a free-text list;
`unapplied_prompts_warning` says so whenever they would have changed a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image

from tagalign_eval import vis
from tagalign_eval.datasets.classes import ClassList, builtin_prompt_map
from tagalign_eval.errors import EvalError
from tagalign_eval.evaluate import protocol_classes
from tagalign_eval.imagefiles import opened, read_rgb
from tagalign_eval.models import EvalModel
from tagalign_eval.protocols import Protocol, per_family_prompts

_TODO = "pass JPEG or PNG image files"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "class"


def check_images(images: list[Path]) -> None:
    """Before the model loads: every image is there and is an image file, and no two share a
    name (their outputs `<stem>_*.png` would overwrite each other)."""
    seen: dict[str, Path] = {}
    for path in images:
        with opened(path, "image", _TODO):
            pass  # the header is enough to tell an image file; pixels are decoded later
        if path.stem in seen:
            raise EvalError(
                f"{seen[path.stem]} and {path} have the same name; their outputs "
                f"{path.stem}_*.png would overwrite each other: predict them separately"
            )
        seen[path.stem] = path


def unapplied_prompts_warning(classes: ClassList, protocol: Protocol) -> str | None:
    """One line naming the per-benchmark prompt settings of `protocol`'s preset that `classes`
    would get on a benchmark but not here, and a background that can never win; None when
    nothing the user gave is affected."""
    by_family = per_family_prompts(protocol.name)
    background = classes.background_from_protocol and not protocol.background_prompts
    parts = []
    families = [f for f, v in by_family.items() if "background_prompts" in v]
    if background and families:
        parts.append(f"its background prompts ({', '.join(families)})")
    renamed: dict[str, str] = {}
    for values in by_family.values():
        if "class_prompts" in values and not protocol.class_prompts:
            stem = values["class_prompts"]
            renamed.update({n: stem for n in builtin_prompt_map(stem).names if n not in renamed})
    hits = [n for n, syn in zip(classes.names, classes.synonyms) if syn == (n,) and n in renamed]
    if hits:
        parts.append(f"its prompt maps ({', '.join(f'{n}: {renamed[n]}' for n in hits)})")
    never = background and protocol.background == "threshold" and protocol.bg_thresh <= 0
    if not parts and not never:
        return None
    what = []
    if parts:
        what.append(f"applies {' and '.join(parts)} to benchmarks only, not to these classes")
    if never:
        what.append(f"never predicts the unprompted background ({protocol.background} 0)")
    advice = "give a class its own prompts with a `label: prompt; prompt` line"
    if background:
        advice += " (e.g. `background: sky; wall`)"
    if never:
        advice += " or pass --bg-thresh"
    return f"predict: protocol {protocol.name} {'; it '.join(what)}: {advice}"


def predict_images(
    model: EvalModel,
    images: list[Path],
    classes: ClassList,
    protocol: Protocol,
    out: Path,
    *,
    device: str | torch.device = "cpu",
    crop_batch: int = 16,
) -> Iterator[Path]:
    """For each image write `<stem>_overlay.png` (image size), `<stem>_panel.png` (image |
    overlay, legend), `<stem>_pred.png` (palette label map) and `<stem>_masks/<k>_<name>.png`."""
    if len(classes) > 256:
        raise EvalError(f"{len(classes)} classes; predict writes 8-bit label maps (at most 256)")
    warning = unapplied_prompts_warning(classes, protocol)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    segmenter = model.segmenter(
        protocol_classes(classes, protocol), protocol, device=device, crop_batch=crop_batch
    )
    out.mkdir(parents=True, exist_ok=True)
    names = classes.names
    for path in images:
        image = read_rgb(path, _TODO)
        label = segmenter.segment([image])[0].cpu().numpy()
        stem = path.stem
        overlay = vis.overlay(image, label, len(names))
        vis.save(overlay, out / f"{stem}_overlay.png")
        yield out / f"{stem}_overlay.png"
        panel = Image.new("RGB", (image.shape[1] * 2, image.shape[0]))
        panel.paste(Image.fromarray(image), (0, 0))
        panel.paste(overlay, (image.shape[1], 0))
        vis.save(vis.with_legend(panel, label, names), out / f"{stem}_panel.png")
        pred = Image.fromarray(label.astype(np.uint8), "P")
        pred.putpalette(vis.palette(256).reshape(-1).tolist())
        vis.save(pred, out / f"{stem}_pred.png")
        for k, name in enumerate(names):
            mask = Image.fromarray(((label == k) * 255).astype(np.uint8), "L")
            vis.save(mask, out / f"{stem}_masks" / f"{k:03d}_{_slug(name)}.png")
        yield out / f"{stem}_panel.png"
