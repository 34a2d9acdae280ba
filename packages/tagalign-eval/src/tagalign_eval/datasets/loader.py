"""Reads a benchmark from disk, checking the layout first so mistakes surface as one-line errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tagalign_eval.datasets.classes import ClassList
from tagalign_eval.datasets.spec import BenchmarkSpec
from tagalign_eval.errors import EvalError
from tagalign_eval.imagefiles import opened, read_rgb
from tagalign_eval.labels import IGNORE

_SHOW = 3


@dataclass(frozen=True)
class Sample:
    stem: str
    image: np.ndarray
    """H x W x 3 uint8 RGB."""
    mask: np.ndarray
    """H x W int64 class indices in the evaluated label space, ignore = `metrics.IGNORE`."""


def _rel(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


def _listing(paths: list[str], total: int) -> str:
    more = f" and {total - len(paths)} more" if total > len(paths) else ""
    return ", ".join(paths) + more


class BenchmarkNotFound(EvalError):
    """A benchmark's folders are not under --data-root (not downloaded or not prepared): `all`
    skips it. Any other problem with its files is an `EvalError` that stops the run."""


class SegDataset:
    """Image/mask pairs of one benchmark, in a stable order (split-list order or sorted stems)."""

    def __init__(
        self,
        spec: BenchmarkSpec,
        data_root: str | Path,
        classes: ClassList | None = None,
        *,
        strict_labels: bool = True,
    ) -> None:
        self.spec = spec
        self.data_root = Path(data_root)
        self.root = self.data_root / spec.root
        self.strict_labels = strict_labels
        self.img_dir = self.root / spec.img_dir
        self.ann_dir = self.root / spec.ann_dir
        self._check_layout()
        self.classes = spec.class_list() if classes is None else self._override(classes)
        self.stems = self._pair_stems()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _check_layout(self) -> None:
        missing = [f for f in (self.img_dir, self.ann_dir) if not f.is_dir()]
        if missing:
            hint = f"; produce it with `{self.spec.prepare}`" if self.spec.prepare else ""
            raise BenchmarkNotFound(
                f"--data-root {self.data_root}: no folder {_rel(missing[0], self.data_root)} "
                f"for benchmark {self.spec.name!r} (expected under --data-root: "
                f"{', '.join(self.spec.expected_folders())}){hint}"
            )
        if self.spec.split and not (self.root / self.spec.split).is_file():
            raise EvalError(
                f"benchmark {self.spec.name!r}: split list {self.root / self.spec.split} is "
                "missing (one image id per line); restore it from the dataset download"
            )

    def _override(self, classes: ClassList) -> ClassList:
        """`--classes` names the benchmark's label values 0..K-1 in order: more names than K
        would be scored as classes no pixel has, fewer would leave labels unnamed (allowed
        with --ignore-out-of-range, which leaves them out of the metric and reports them)."""
        own = self.spec.class_list()
        if len(classes) > len(own) or (len(classes) < len(own) and self.strict_labels):
            fewer = (
                "; or pass --ignore-out-of-range to score only those"
                if len(classes) < len(own)
                else ""
            )
            given = "--classes" if classes.source == "--classes" else f"--classes {classes.source}"
            raise EvalError(
                f"{given} has {len(classes)} names but benchmark "
                f"{self.spec.name!r} has {len(own)} classes ({own.source}); give one name per "
                f"class, in the benchmark's label order{fewer}"
            )
        return classes

    def _fix_hint(self, kind: str) -> str:
        """What to do about a damaged image or mask file of this benchmark."""
        if kind == "mask" and self.spec.prepare:
            return f"re-run `{self.spec.prepare}`"
        return "re-extract it from the dataset download, or replace it"

    def image_path(self, stem: str) -> Path:
        return self.img_dir / f"{stem}{self.spec.img_suffix}"

    def mask_path(self, stem: str) -> Path:
        return self.ann_dir / f"{stem}{self.spec.ann_suffix}"

    def _stems_in(self, folder: Path, suffix: str) -> set[str]:
        return {
            str(p.relative_to(folder))[: -len(suffix)]
            for p in folder.rglob(f"*{suffix}")
            if p.is_file()
        }

    def _pair_stems(self) -> list[str]:
        spec = self.spec
        if spec.split:
            lines = (self.root / spec.split).read_text().split()
            stems = [s.strip() for s in lines if s.strip()]
            no_img = [s for s in stems if not self.image_path(s).is_file()]
            no_mask = [s for s in stems if not self.mask_path(s).is_file()]
        else:
            images = self._stems_in(self.img_dir, spec.img_suffix)
            masks = self._stems_in(self.ann_dir, spec.ann_suffix)
            stems = sorted(images & masks)
            no_mask = sorted(images - masks)
            no_img = sorted(masks - images)
        if no_mask:
            shown = [str(self.image_path(s)) for s in no_mask[:_SHOW]]
            raise EvalError(
                f"benchmark {spec.name!r}: {len(no_mask)} image(s) without a mask "
                f"({spec.ann_suffix} in {self.ann_dir}): {_listing(shown, len(no_mask))}"
            )
        if no_img:
            shown = [str(self.mask_path(s)) for s in no_img[:_SHOW]]
            raise EvalError(
                f"benchmark {spec.name!r}: {len(no_img)} mask(s) without an image "
                f"({spec.img_suffix} in {self.img_dir}): {_listing(shown, len(no_img))}"
            )
        if not stems:
            raise EvalError(
                f"benchmark {spec.name!r}: no {spec.img_suffix} images found in {self.img_dir}"
            )
        return stems

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> Sample:
        stem = self.stems[index]
        image = read_rgb(self.image_path(stem), self._fix_hint("image"))
        mask = self.read_mask(stem)
        if mask.shape != image.shape[:2]:
            raise EvalError(
                f"{self.mask_path(stem)}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}; masks must have their image's size"
            )
        return Sample(stem, image, mask)

    def read_mask(self, stem: str) -> np.ndarray:
        """The mask in evaluated label space: ignore -> IGNORE, reduce_zero_label applied."""
        path = self.mask_path(stem)
        with opened(path, "mask", self._fix_hint("mask")) as im:
            raw = self._decode(im, path)
        ignore = raw == self.spec.ignore_index
        label = raw.copy()
        if self.spec.reduce_zero_label:
            ignore |= raw == 0
            label = raw - 1
        label[ignore] = IGNORE
        if self.strict_labels:
            bad = (label >= self.num_classes) | (label < IGNORE)
            if bad.any():
                values = np.unique(raw[bad])
                shown = ", ".join(str(v) for v in values[:8])
                raise EvalError(
                    f"{path}: label value(s) {shown} outside the {self.num_classes} classes of "
                    f"{self.classes.source} (ignore {self.spec.ignore_index}); fix --classes, or "
                    "pass --ignore-out-of-range to leave them out of the metric and report them"
                )
        return label

    def _decode(self, im: Image.Image, path: Path) -> np.ndarray:
        if self.spec.mask_encoding == "rgb16":
            rgb = np.asarray(im.convert("RGB")).astype(np.int64)
            return rgb[..., 0] + 256 * rgb[..., 1]
        if im.mode not in ("P", "L", "I", "I;16"):
            raise EvalError(
                f"{path}: mask has mode {im.mode}; expected a palette or grey PNG of class indices"
            )
        return np.asarray(im).astype(np.int64)


def open_benchmark(
    spec: BenchmarkSpec,
    data_root: str | Path,
    classes: ClassList | None = None,
    *,
    strict_labels: bool = True,
) -> SegDataset:
    """Check the layout and list the pairs; `classes` replaces the benchmark's class names."""
    return SegDataset(spec, data_root, classes, strict_labels=strict_labels)
