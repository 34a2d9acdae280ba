"""`tagalign-eval prepare`: raw downloads -> the label files the benchmarks read.

- coco-stuff: COCO-Stuff 164k `stuffthingmaps` PNGs (value = COCO category id - 1, 255 unlabeled)
  -> `*_labelTrainIds.png` with the 171 contiguous train ids (80 things, then 91 stuff).
- coco-object: the same raw PNGs -> `*_instanceTrainIds.png`: things 1..80, stuff 0
  (background), unlabeled 255.
- cityscapes: `*_gtFine_labelIds.png` -> `*_gtFine_labelTrainIds.png` (19 train ids, 255 ignore).
- context: the Detail API's `trainval_merged.json` (459 categories, COCO-style RLE masks) ->
  `SegmentationClassContext/<stem>.png` with 0 = background and 1..59 the Pascal Context 59
  classes (all other categories become background), plus the val split list.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tagparse.atomic import atomic_path, atomic_write_text
from tqdm import tqdm

from tagalign_eval.errors import EvalError
from tagalign_eval.imagefiles import opened
from tagalign_eval.outputs import writing

# COCO category ids (1-based) that exist in neither things nor stuff.
_COCO_UNUSED = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91}
_COCO_LAST_STUFF = 182  # category 183 "other" is not a class in COCO-Stuff 171


def coco_stuff_lut() -> np.ndarray:
    """Raw value (category id - 1) -> train id 0..170, everything else 255."""
    lut = np.full(256, 255, dtype=np.uint8)
    train_id = 0
    for cat in range(1, _COCO_LAST_STUFF + 1):
        if cat in _COCO_UNUSED:
            continue
        lut[cat - 1] = train_id
        train_id += 1
    assert train_id == 171
    return lut


def coco_object_lut() -> np.ndarray:
    """Raw value -> 1..80 for things, 0 for stuff (background), 255 for unlabeled."""
    stuff = coco_stuff_lut()
    lut = np.where(stuff < 80, stuff + 1, np.where(stuff == 255, 255, 0)).astype(np.uint8)
    return lut


# Cityscapes labelIds -> trainIds (cityscapesScripts `labels.py`).
_CITY = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}


def cityscapes_lut() -> np.ndarray:
    lut = np.full(256, 255, dtype=np.uint8)
    for label_id, train_id in _CITY.items():
        lut[label_id] = train_id
    return lut


# The 59 Pascal Context categories among the 459 of the Detail annotations, plus 0 (background).
# Their sorted order gives the 60-class label values (the order of mmseg's PascalContextDataset).
_CONTEXT_IDS = sorted(
    [
        0,
        2,
        259,
        260,
        415,
        324,
        9,
        258,
        144,
        18,
        19,
        22,
        23,
        397,
        25,
        284,
        158,
        159,
        416,
        33,
        162,
        420,
        454,
        295,
        296,
        427,
        44,
        45,
        46,
        308,
        59,
        440,
        445,
        31,
        232,
        65,
        354,
        424,
        68,
        326,
        72,
        458,
        34,
        207,
        80,
        355,
        85,
        347,
        220,
        349,
        360,
        98,
        187,
        104,
        105,
        366,
        189,
        368,
        113,
        115,
    ]
)


def context_lut() -> np.ndarray:
    """Detail category id (0..459) -> 0..59; categories outside the 59 become background 0."""
    lut = np.zeros(460, dtype=np.uint8)
    for label, cat in enumerate(_CONTEXT_IDS):
        lut[cat] = label
    return lut


def rle_decode(rle: dict) -> np.ndarray:
    """A COCO RLE (`{"size": [h, w], "counts": str | list}`) -> bool mask [h, w]."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = _rle_counts(counts)
    flat = np.zeros(h * w, dtype=bool)
    pos = 0
    for i, run in enumerate(counts):
        if i % 2:
            flat[pos : pos + run] = True
        pos += run
    return flat.reshape(w, h).T  # runs are column-major


def _rle_counts(text: str) -> list[int]:
    """COCO's compressed count string: 5-bit groups, sign-extended, delta-coded from i-2."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        value, shift, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            p += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _prepare_context(data_root: Path) -> int:
    devkit = _need(
        data_root / "VOCdevkit" / "VOC2010", "unpack VOCtrainval_03-May-2010.tar into --data-root"
    )
    source = devkit / "trainval_merged.json"
    if not source.is_file():
        raise EvalError(
            f"{source} is missing: download trainval_merged.json (Detail API) into {devkit}"
        )
    try:
        data = json.loads(source.read_text())
        images = [im for im in data["images"] if im.get("phase") == "val"]
        annotations = data["annos_segmentation"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise EvalError(f"{source}: not a Detail trainval_merged.json ({exc})") from None
    out = devkit / "SegmentationClassContext"
    with writing(out):
        out.mkdir(exist_ok=True)
    lut = context_lut()
    stems = []
    try:
        by_image: dict[int, list[dict]] = {}
        for ann in annotations:
            by_image.setdefault(ann["image_id"], []).append(ann)
        for im in tqdm(images, desc="context", unit="mask", disable=None):
            category = np.zeros((im["height"], im["width"]), dtype=np.int64)
            for ann in by_image.get(im["image_id"], []):
                category[rle_decode(ann["segmentation"])] = ann["category_id"]
            stem = Path(im["file_name"]).stem
            with writing(out / f"{stem}.png"):
                Image.fromarray(lut[category], "L").save(out / f"{stem}.png")
            stems.append(stem)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise EvalError(
            f"{source}: not a Detail trainval_merged.json ({type(exc).__name__}: {exc}); "
            "download it again"
        ) from None
    split = devkit / "ImageSets" / "SegmentationContext" / "val.txt"
    with writing(split):
        split.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(split, "".join(f"{s}\n" for s in sorted(stems)))
    return len(stems)


def _convert(sources: list[Path], target, lut: np.ndarray, desc: str) -> int:
    for src in tqdm(sources, desc=desc, unit="mask", disable=None):
        with opened(src, "label PNG", "re-extract it from the dataset download") as im:
            raw = np.asarray(im)
        if raw.ndim != 2:
            raise EvalError(f"{src}: expected a single-channel label PNG, got shape {raw.shape}")
        out = Image.fromarray(lut[raw.astype(np.int64).clip(0, 255)], "L")
        with writing(target(src)), atomic_path(target(src)) as tmp:
            out.save(tmp, format="PNG")
    return len(sources)


def _need(folder: Path, what: str) -> Path:
    if not folder.is_dir():
        raise EvalError(f"{folder} is missing: {what}")
    return folder


def _coco_raw(data_root: Path, split: str | None) -> list[Path]:
    folder = _need(
        data_root / "coco_stuff164k" / "annotations" / (split or "val2017"),
        "unzip stuffthingmaps_trainval2017.zip into coco_stuff164k/annotations/",
    )
    raw = sorted(
        p
        for p in folder.glob("*.png")
        if not p.name.endswith(("_labelTrainIds.png", "_instanceTrainIds.png"))
    )
    if not raw:
        raise EvalError(f"{folder}: no raw stuffthingmaps PNGs (<id>.png) to convert")
    return raw


def _coco_preparer(
    benchmark: str, suffix: str, lut: Callable[[], np.ndarray]
) -> Callable[[Path, str | None], int]:
    """COCO-Stuff and COCO-Object read the same raw stuffthingmaps and differ only in the lookup
    table and the converted file's suffix (mmseg's `_labelTrainIds` / `_instanceTrainIds`)."""

    def prepare(data_root: Path, split: str | None) -> int:
        return _convert(
            _coco_raw(data_root, split), lambda p: p.with_name(p.stem + suffix), lut(), benchmark
        )

    return prepare


def _prepare_cityscapes(data_root: Path, split: str | None) -> int:
    folder = _need(
        data_root / "cityscapes" / "gtFine" / (split or "val"),
        "unzip gtFine_trainvaltest.zip into cityscapes/",
    )
    raw = sorted(folder.rglob("*_gtFine_labelIds.png"))
    if not raw:
        raise EvalError(f"{folder}: no *_gtFine_labelIds.png files to convert")
    return _convert(
        raw,
        lambda p: p.with_name(p.name.replace("_labelIds.png", "_labelTrainIds.png")),
        cityscapes_lut(),
        "cityscapes",
    )


#: `tagalign-eval prepare NAME` -> the converter of NAME's raw labels (data_root, split) ->
#: masks written; the CLI's choices are this table's keys.
PREPARERS: dict[str, Callable[[Path, str | None], int]] = {
    "coco-object": _coco_preparer("coco-object", "_instanceTrainIds.png", coco_object_lut),
    "coco-stuff": _coco_preparer("coco-stuff", "_labelTrainIds.png", coco_stuff_lut),
    "cityscapes": _prepare_cityscapes,
    "context": lambda data_root, _split: _prepare_context(data_root),
}


def run(benchmark: str, data_root: Path, split: str | None = None) -> int:
    """Convert one benchmark's raw labels in place; returns the number of masks written."""
    if benchmark not in PREPARERS:
        raise EvalError(
            f"prepare: unknown benchmark {benchmark!r}; choose one of {', '.join(PREPARERS)}"
        )
    return PREPARERS[benchmark](data_root, split)
