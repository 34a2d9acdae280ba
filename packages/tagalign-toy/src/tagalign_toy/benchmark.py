"""Registers the ToyShapes splits with the evaluator: `toyshapes`, `toyshapes-attr` and
`toyshapes-pairs`.

The first two read `VOCdevkit/ToyShapes/` under `--data-root` (the generated world's folder);
`toyshapes-pairs` reads `VOCdevkit/ToyShapesPairs/`, images that hold one shape in two colours,
scored on the attribute classes: "red circle" must cover the red circle and not the blue one.
Background is scored like the stuff classes of Pascal Context: from the prompts of the world's
backgrounds (`background; grass; sky; sand` in the class files), not from a protocol constant.
"""

from __future__ import annotations

from pathlib import Path

from tagalign_eval.datasets.registry import register_benchmark
from tagalign_eval.datasets.spec import BenchmarkSpec

from tagalign_toy.generator import ATTR_MASK_DIR, PAIRS_VOC_NAME, SHAPE_MASK_DIR, VOC_NAME

CLASS_DIR = Path(__file__).parent / "classes"
SHAPES_CLASS_FILE = CLASS_DIR / "toyshapes.txt"
ATTR_CLASS_FILE = CLASS_DIR / "toyshapes_attr.txt"

SPECS = (
    BenchmarkSpec(
        name="toyshapes",
        root=f"VOCdevkit/{VOC_NAME}",
        img_dir="JPEGImages",
        ann_dir=SHAPE_MASK_DIR,
        split="ImageSets/Segmentation/val.txt",
        classes=str(SHAPES_CLASS_FILE),
        family="toyshapes",
        title="Shapes",
        prepare="tagalign-demo --out DIR (writes DIR/world/<version>/)",
    ),
    BenchmarkSpec(
        name="toyshapes-attr",
        root=f"VOCdevkit/{VOC_NAME}",
        img_dir="JPEGImages",
        ann_dir=ATTR_MASK_DIR,
        split="ImageSets/Segmentation/val.txt",
        classes=str(ATTR_CLASS_FILE),
        family="toyshapes",
        title="Attr-shapes",
        prepare="tagalign-demo --out DIR (writes DIR/world/<version>/)",
    ),
    BenchmarkSpec(
        name="toyshapes-pairs",
        root=f"VOCdevkit/{PAIRS_VOC_NAME}",
        img_dir="JPEGImages",
        ann_dir=ATTR_MASK_DIR,
        split="ImageSets/Segmentation/val.txt",
        classes=str(ATTR_CLASS_FILE),
        family="toyshapes",
        title="Attr-pairs",
        prepare="tagalign-demo --out DIR (writes DIR/world/<version>/)",
    ),
)

#: Protocol overrides for the toy world's 96-px images: one whole-image window, no upsampling.
#: (Pass them as `--short-side 96 --max-long-side 96 --crop 96 --stride 96`.)
TOY_PROTOCOL = {"short_side": 96, "max_long_side": 96, "crop": 96, "stride": 96}


def register() -> None:
    """Entry point of group `tagalign_eval.benchmarks` (idempotent)."""
    for spec in SPECS:
        register_benchmark(spec.name, spec, replace=True)
