"""Benchmark specs: where a benchmark's files live under `--data-root` and how to read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from tagalign_eval.datasets.classes import (
    ClassList,
    builtin_class_list,
    load_class_file,
    looks_like_path,
)


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark in its TCL/mmseg on-disk layout.

    Paths are relative to `--data-root`; `root` is the benchmark's folder below it. An image
    `root/img_dir/<stem><img_suffix>` pairs with the mask `root/ann_dir/<stem><ann_suffix>`, where
    `<stem>` may contain sub-folders (Cityscapes cities, ImageNet-S synsets). With a `split` list
    only the listed stems are evaluated.
    """

    name: str
    root: str
    img_dir: str
    ann_dir: str
    classes: str
    """A builtin class-list stem (`voc`) or a path to a class file."""
    img_suffix: str = ".jpg"
    ann_suffix: str = ".png"
    split: str | None = None
    reduce_zero_label: bool = False
    """mmseg's reduce_zero_label: file value 0 -> ignore, v -> v - 1 (VOC20, Context59, ADE20K)."""
    ignore_index: int = 255
    mask_encoding: str = "index"
    """`index`: palette/grey PNG of class values; `rgb16`: value = R + 256 * G (ImageNet-S)."""
    family: str | None = None
    """Key of the per-dataset protocol values (`voc`, `context`, ...); defaults to `name`."""
    val_size: int | None = None
    """Documented number of evaluation images (for time estimates)."""
    prepare: str | None = None
    """The command that produces the layout from the raw download, when one is needed."""
    title: str | None = None
    """Column title in the Markdown table."""

    @property
    def protocol_family(self) -> str:
        return self.family or self.name

    def class_list(self) -> ClassList:
        if looks_like_path(self.classes):
            return load_class_file(self.classes)
        return builtin_class_list(self.classes)

    def expected_folders(self) -> list[str]:
        """Paths below `--data-root` (absolute ones, as a custom folder has, stay absolute)."""
        parts = [self.img_dir, self.ann_dir, *([self.split] if self.split else [])]
        return [str(PurePosixPath(self.root) / part) for part in parts]
