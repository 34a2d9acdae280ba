"""The ten standard benchmarks in the layouts TCL/mmseg use (paper column order), plus
ImageNet-S919."""

from tagalign_eval.datasets.registry import register_benchmark
from tagalign_eval.datasets.spec import BenchmarkSpec

PAPER_ORDER = (
    "voc",
    "context",
    "coco-object",
    "voc20",
    "context59",
    "coco-stuff",
    "cityscapes",
    "ade20k",
    "imagenet-s50",
    "imagenet-s300",
)
"""Column order of the published tables (ImageNet-S after the paper's eight columns)."""

PAPER_EIGHT = PAPER_ORDER[:8]

_VOC12 = "VOCdevkit/VOC2012"
_VOC10 = "VOCdevkit/VOC2010"
_COCO = "coco_stuff164k"

BUILTIN = (
    BenchmarkSpec(
        name="voc",
        root=_VOC12,
        img_dir="JPEGImages",
        ann_dir="SegmentationClass",
        split="ImageSets/Segmentation/val.txt",
        classes="voc",
        val_size=1449,
        title="VOC",
    ),
    BenchmarkSpec(
        name="context",
        root=_VOC10,
        img_dir="JPEGImages",
        ann_dir="SegmentationClassContext",
        split="ImageSets/SegmentationContext/val.txt",
        classes="context",
        val_size=5104,
        prepare="tagalign-eval prepare context --data-root DIR",
        title="Context",
    ),
    BenchmarkSpec(
        name="coco-object",
        root=_COCO,
        img_dir="images/val2017",
        ann_dir="annotations/val2017",
        ann_suffix="_instanceTrainIds.png",
        classes="coco_object",
        val_size=5000,
        prepare="tagalign-eval prepare coco-object --data-root DIR",
        title="Object",
    ),
    BenchmarkSpec(
        name="voc20",
        root=_VOC12,
        img_dir="JPEGImages",
        ann_dir="SegmentationClass",
        split="ImageSets/Segmentation/val.txt",
        classes="voc20",
        reduce_zero_label=True,
        family="voc20",
        val_size=1449,
        title="VOC20",
    ),
    BenchmarkSpec(
        name="context59",
        root=_VOC10,
        img_dir="JPEGImages",
        ann_dir="SegmentationClassContext",
        split="ImageSets/SegmentationContext/val.txt",
        classes="context59",
        reduce_zero_label=True,
        val_size=5104,
        prepare="tagalign-eval prepare context --data-root DIR",
        title="C59",
    ),
    BenchmarkSpec(
        name="coco-stuff",
        root=_COCO,
        img_dir="images/val2017",
        ann_dir="annotations/val2017",
        ann_suffix="_labelTrainIds.png",
        classes="coco_stuff",
        val_size=5000,
        prepare="tagalign-eval prepare coco-stuff --data-root DIR",
        title="Stuff",
    ),
    BenchmarkSpec(
        name="cityscapes",
        root="cityscapes",
        img_dir="leftImg8bit/val",
        ann_dir="gtFine/val",
        img_suffix="_leftImg8bit.png",
        ann_suffix="_gtFine_labelTrainIds.png",
        classes="cityscapes",
        val_size=500,
        prepare="tagalign-eval prepare cityscapes --data-root DIR",
        title="City",
    ),
    BenchmarkSpec(
        name="ade20k",
        root="ade/ADEChallengeData2016",
        img_dir="images/validation",
        ann_dir="annotations/validation",
        classes="ade20k",
        reduce_zero_label=True,
        val_size=2000,
        title="ADE",
    ),
    BenchmarkSpec(
        name="imagenet-s50",
        root="ImageNetS/ImageNetS50",
        img_dir="validation",
        ann_dir="validation-segmentation",
        img_suffix=".JPEG",
        classes="imagenet_s50",
        ignore_index=1000,
        mask_encoding="rgb16",
        family="imagenet-s",
        val_size=752,
        title="IN-S50",
    ),
    BenchmarkSpec(
        name="imagenet-s300",
        root="ImageNetS/ImageNetS300",
        img_dir="validation",
        ann_dir="validation-segmentation",
        img_suffix=".JPEG",
        classes="imagenet_s300",
        ignore_index=1000,
        mask_encoding="rgb16",
        family="imagenet-s300",
        val_size=4097,
        title="IN-S300",
    ),
)

EXTRA = (
    BenchmarkSpec(
        name="imagenet-s919",
        root="ImageNetS/ImageNetS919",
        img_dir="validation",
        ann_dir="validation-segmentation",
        img_suffix=".JPEG",
        classes="imagenet_s919",
        ignore_index=1000,
        mask_encoding="rgb16",
        family="imagenet-s919",
        val_size=12419,
        title="IN-S919",
    ),
)
"""Registered, but outside `all`'s default list: the published tables have no IN-S919 column."""

for _spec in BUILTIN + EXTRA:
    register_benchmark(_spec.name, _spec)
