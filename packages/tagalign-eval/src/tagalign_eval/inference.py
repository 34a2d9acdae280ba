"""Open-vocabulary segmentation of whole images: keep-ratio resize, batched sliding windows with
mmseg slide-mode averaging, the protocol's mask head, CLIP blend and background rule.

The model enters only through a *dense function* `images [B,3,h,w] -> (trained [B,E,h',w'],
baseline [B,E,h',w'] | None)` and precomputed text embeddings, so the same code serves trained
checkpoints, training-free baselines and any other dense CLIP-like model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.constants import IMAGENET_MEAN, IMAGENET_STD, OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from tagalign_train.preprocess import normalize

from tagalign_eval.datasets.classes import ClassList
from tagalign_eval.pamr import pamr
from tagalign_eval.protocols import Protocol

_NORMS = {
    "clip": (OPENAI_DATASET_MEAN, OPENAI_DATASET_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}
"""Fixed mean/std a protocol may ask for instead of the model's own (`Protocol.normalize`)."""

DenseFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
TextEncoder = Callable[[list[str]], torch.Tensor]


@dataclass(frozen=True)
class ClassEmbeddings:
    """Text side of a benchmark, computed once: one embedding per prompted class name."""

    embeddings: torch.Tensor
    """[M, E] L2-normalised (mean over templates, renormalised)."""
    prompt_class: torch.Tensor
    """[M] index (among the prompted classes) of the class each name belongs to."""
    num_classes: int
    """All classes, including a protocol background."""
    background_index: int | None
    """0 when the first class is `background`, else None."""
    background_from_protocol: bool
    """True when that background has no prompt and comes from the protocol's constant/threshold."""

    @property
    def num_prompted(self) -> int:
        return self.num_classes - int(self.background_from_protocol)


@torch.no_grad()
def encode_classes(
    encode_text: TextEncoder, classes: ClassList, templates: Sequence[str]
) -> ClassEmbeddings:
    prompted = classes.prompted
    offset = 1 if classes.background_from_protocol else 0
    texts = [t.format(name) for _, name in prompted for t in templates]
    emb = encode_text(texts).float()
    emb = emb.reshape(len(prompted), len(templates), -1).mean(dim=1)
    emb = F.normalize(emb, dim=-1)
    owner = torch.tensor([i - offset for i, _ in prompted], dtype=torch.long, device=emb.device)
    return ClassEmbeddings(
        embeddings=emb,
        prompt_class=owner,
        num_classes=len(classes),
        background_index=0 if classes.names[0] == "background" else None,
        background_from_protocol=classes.background_from_protocol,
    )


def rescale_size(height: int, width: int, short_side: int, max_long_side: int) -> tuple[int, int]:
    """mmcv's keep-ratio `imrescale` target (h, w) for `img_scale=(max_long_side, short_side)`."""
    scale = min(max_long_side / max(height, width), short_side / min(height, width))
    return int(height * scale + 0.5), int(width * scale + 0.5)


def downsample_size(height: int, width: int, limit: int) -> tuple[int, int] | None:
    """TagAlign's ImageNet-S rule: an image of more than `limit`**2 pixels is resized to a long
    side of `limit` (the other side truncated, as `int()` does); None when it is kept as is."""
    if limit <= 0 or height * width <= limit * limit:
        return None
    if height > width:
        return limit, int(limit * width / height)
    return int(limit * height / width), limit


def window_grid(height: int, width: int, crop: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(y1, y2, x1, x2) of mmseg slide-mode windows; the last row/column is flush with the edge."""
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y2 = min(r * stride + crop, height)
            x2 = min(c * stride + crop, width)
            boxes.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return boxes


class Segmenter:
    """Turns images into class-probability maps and label maps under one protocol.

    `image_mean`/`image_std` are the model's own; a protocol with `normalize` `clip` or
    `imagenet` replaces them with those fixed values (the source's preprocessing)."""

    def __init__(
        self,
        dense_fn: DenseFn,
        classes: ClassEmbeddings,
        protocol: Protocol,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        *,
        device: torch.device | str = "cpu",
        crop_batch: int = 16,
    ) -> None:
        self.dense_fn = dense_fn
        self.classes = classes
        self.protocol = protocol
        self.device = torch.device(device)
        image_mean, image_std = _NORMS.get(protocol.normalize, (image_mean, image_std))
        self.mean = torch.tensor(image_mean, device=self.device).view(3, 1, 1)
        self.std = torch.tensor(image_std, device=self.device).view(3, 1, 1)
        self.crop_batch = max(1, crop_batch)
        self.text = classes.embeddings.to(self.device)
        self.owner = classes.prompt_class.to(self.device)

    # -- one batch of crops -------------------------------------------------------------------
    @property
    def _averages_similarities(self) -> bool:
        return self.protocol.window_average == "similarities"

    def _similarities(self, dense: torch.Tensor) -> torch.Tensor:
        """[B,E,h,w] -> cosine similarity to every prompted name [B,M,h,w]."""
        return torch.einsum("behw,me->bmhw", F.normalize(dense.float(), dim=1), self.text)

    def _class_probs(self, sim: torch.Tensor) -> torch.Tensor:
        """Similarities [B,M,h,w] -> per-class probabilities [B,K',h,w]: the head over all names
        (softmax across them), then each class's best name (SCLIP's max over a class's names)."""
        p = self.protocol
        if p.head == "softmax":
            prob = torch.softmax(p.scale * sim, dim=1)
        else:
            prob = torch.sigmoid(p.scale * sim + p.bias)
        b, _, h, w = prob.shape
        out = prob.new_zeros(b, self.classes.num_prompted, h, w)
        index = self.owner.view(1, -1, 1, 1).expand_as(prob)
        return out.scatter_reduce(1, index, prob, reduce="amax", include_self=False)

    def _head(self, dense: torch.Tensor) -> torch.Tensor:
        """[B,E,h,w] -> per-class probabilities [B,K',h,w] (best of each class's names)."""
        return self._class_probs(self._similarities(dense))

    @torch.no_grad()
    def crop_probs(self, crops: torch.Tensor) -> torch.Tensor:
        """Normalised crops [B,3,h,w] -> class probabilities [B,K',h,w] at crop resolution."""
        trained, baseline = self.dense_fn(crops)
        prob = self._head(trained)
        w = self.protocol.clip_blend
        if baseline is not None and w > 0:
            prob = (1 - w) * prob + w * self._head(baseline)
        if self.protocol.pamr:
            prob = pamr(crops * self.std + self.mean, prob)
        return F.interpolate(prob, crops.shape[-2:], mode="bilinear", align_corners=False)

    @torch.no_grad()
    def crop_maps(self, crops: torch.Tensor) -> torch.Tensor:
        """What the windows average, at crop resolution: class probabilities, or (SCLIP) the raw
        similarities [B,M,h,w] of the trained path, whose head runs after averaging."""
        if not self._averages_similarities:
            return self.crop_probs(crops)
        sim = self._similarities(self.dense_fn(crops)[0])
        return F.interpolate(sim, crops.shape[-2:], mode="bilinear", align_corners=False)

    # -- whole images ---------------------------------------------------------------------------
    def prepare(
        self, image: np.ndarray | torch.Tensor, downsample: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """uint8 H x W x 3 -> normalised [3,h,w] on the device, keep-ratio resized (first
        downsampled to `downsample` (h, w) when given: `downsample_size`)."""
        x = torch.tensor(np.asarray(image), device=self.device).permute(2, 0, 1).float() / 255.0
        if downsample is not None:
            x = F.interpolate(x[None], downsample, mode="bilinear", align_corners=False)[0]
        size = rescale_size(
            x.shape[1], x.shape[2], self.protocol.short_side, self.protocol.max_long_side
        )
        x = F.interpolate(x[None], size, mode="bilinear", align_corners=False)[0]
        return normalize(x, self.mean, self.std)

    @torch.no_grad()
    def slide(self, images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Averaged window maps (`crop_maps`) [K',h,w] or [M,h,w] for prepared images.

        Crops of all the images are batched together (grouped by crop shape, `crop_batch` per
        forward); each image's sum of window probabilities is divided by its window count.
        """
        p = self.protocol
        channels = len(self.owner) if self._averages_similarities else self.classes.num_prompted
        sums = [img.new_zeros(channels, *img.shape[1:]) for img in images]
        counts = [img.new_zeros(1, *img.shape[1:]) for img in images]
        Box = tuple[int, int, int, int]
        groups: dict[tuple[int, int], list[tuple[int, Box]]] = defaultdict(list)
        for i, img in enumerate(images):
            for box in window_grid(img.shape[1], img.shape[2], p.crop, p.stride):
                groups[(box[1] - box[0], box[3] - box[2])].append((i, box))
        for jobs in groups.values():
            for start in range(0, len(jobs), self.crop_batch):
                chunk = jobs[start : start + self.crop_batch]
                crops = torch.stack([images[i][:, y1:y2, x1:x2] for i, (y1, y2, x1, x2) in chunk])
                probs = self.crop_maps(crops)
                for (i, (y1, y2, x1, x2)), prob in zip(chunk, probs):
                    sums[i][:, y1:y2, x1:x2] += prob
                    counts[i][:, y1:y2, x1:x2] += 1
        return [s / c for s, c in zip(sums, counts)]

    def probabilities(self, averaged: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Averaged window maps (`slide`) -> class probabilities [K',H,W] at `size`: resized
        (bilinear), and under `similarities` averaging scaled and softmaxed only then (SCLIP)."""
        full = F.interpolate(averaged[None], size, mode="bilinear", align_corners=False)
        return self._class_probs(full)[0] if self._averages_similarities else full[0]

    def _argmax(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(best score, label) per pixel, a protocol background counted as class 0."""
        best, label = probs.max(dim=0)
        if self.classes.background_from_protocol:
            label = label + 1
            if self.protocol.background == "constant":
                # A constant background channel in front wins the argmax on ties.
                label[best <= self.protocol.bg_thresh] = 0
        return best, label

    def _suppress_small_classes(self, probs: torch.Tensor) -> torch.Tensor:
        """SCLIP's `area_thd`: a foreground class holding at most `area_thresh` of the pixels the
        argmax gives to foreground classes has its probability zeroed (a background class, the
        first class when it is `background`, is never suppressed nor counted)."""
        _, label = self._argmax(probs)
        offset = int(self.classes.background_from_protocol)
        first_fg = 1 if self.classes.background_index is not None else 0
        area = torch.bincount(label.flatten(), minlength=self.classes.num_classes)[first_fg:]
        keep = area > self.protocol.area_thresh * area.sum()
        mask = torch.ones(probs.shape[0], device=probs.device, dtype=probs.dtype)
        mask[first_fg - offset :] = keep.to(probs.dtype)
        return probs * mask.view(-1, 1, 1)

    def labels(self, probs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Class probabilities [K',h,w] -> label map [H,W] at `size` (resized if need be)."""
        p = self.protocol
        if tuple(probs.shape[-2:]) != tuple(size):
            probs = F.interpolate(probs[None], size, mode="bilinear", align_corners=False)[0]
        if p.area_thresh > 0:
            probs = self._suppress_small_classes(probs)
        best, label = self._argmax(probs)
        if p.background == "threshold" and self.classes.background_index is not None:
            # SCLIP's threshold marks background only strictly below it.
            label[best < p.bg_thresh] = self.classes.background_index
        return label

    @torch.no_grad()
    def segment(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """uint8 images -> label maps [H,W] (long, on the device) at each image's own size.

        With `downsample_large`, a large image is predicted at its downsampled size and the label
        map resized back (nearest), as TagAlign's ImageNet-S evaluation does.
        """
        sizes = [tuple(img.shape[:2]) for img in images]
        small = [downsample_size(h, w, self.protocol.downsample_large) for h, w in sizes]
        prepared = [self.prepare(img, at) for img, at in zip(images, small)]
        averaged = self.slide(prepared)
        out = []
        for avg, size, at in zip(averaged, sizes, small):
            label = self.labels(self.probabilities(avg, at or size), at or size)
            if at is not None:
                label = F.interpolate(label[None, None].float(), size, mode="nearest")[0, 0]
            out.append(label.long())
        return out
