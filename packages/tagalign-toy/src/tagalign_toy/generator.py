"""ToyShapes: a seeded synthetic world of coloured, patterned shapes on textured backgrounds, with
noisy captions (version 2: upright shapes with per-shape surface patterns, bigger sizes, and the
`single` and `pairs` splits; see docs/toy-world.md).

Every sample is drawn from its own random stream `(seed, split, index)`, so a sample never depends
on how many others were generated, and the same seed always yields the same bytes (JPEGs at a fixed
quality without metadata, tar members with fixed mtime/owner, palette PNGs without text chunks).

The world is built in four modules: `scene` (the vocabulary and the scenes), `render` (pixels
and masks), `captions` (noisy alt-text and its gold tags) and this one (a random stream per
sample, and the splits on disk in the webdataset and VOC layouts).
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import tarfile
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image
from tagalign_eval import vis
from tqdm import tqdm

from tagalign_toy.caption_noise import CLEAN, CaptionNoise
from tagalign_toy.caption_noise import level as noise_level
from tagalign_toy.captions import describe, write_caption
from tagalign_toy.render import render
from tagalign_toy.scene import (
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    SIZES,
    TOYSHAPES_VERSION,
    UPRIGHT,
    Scene,
    ShapeObject,
    attribute_classes,
    place,
    sample_scene,
    shape_classes,
)

JPEG_QUALITY = 92
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2, "pretrain": 3, "single": 4, "pairs": 5}


#: The third word of a sample's caption-noise stream `(seed, split, index, NOISE_STREAM)`.
NOISE_STREAM = 2


def make_sample(
    seed: int, split: str, index: int, noise: CaptionNoise = CLEAN
) -> tuple[Scene, Image.Image, np.ndarray, np.ndarray]:
    """One sample from its own random stream: captioned scene, image, shape mask, attribute mask.
    The caption's `noise` level draws from a second stream, so the image is the same at every
    level."""
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
    scene = sample_scene(rng, f"{split}{index:07d}")
    noise_rng = np.random.default_rng([seed, _SPLIT_IDS[split], index, NOISE_STREAM])
    write_caption(scene, rng, noise, noise_rng)
    image, shape_mask, attr_mask = render(scene, rng)
    return scene, image, shape_mask, attr_mask


def make_pretrain_group(seed: int, index: int) -> list[tuple[str, Image.Image]]:
    """One sibling group of the toy CLIP's `pretrain` split: six (caption, image) pairs of one
    layout that differ only in their shapes, captioned by `describe`.

    The layout (a single object for even indices, a 1-3 object scene for odd ones) keeps its
    positions, sizes, colours, pixel noise and background; sibling k gives every object the shape
    k places after its own in `SHAPES`, so each object takes all six shapes across the group.
    Batched whole, siblings are negatives that only the object class tells apart. Without them a
    batch is separable by colour, size and background alone and a from-scratch CLIP never learns
    shapes (bench/RESULTS.md, issues 7 and 14). Not the TagAlign train split, as real CLIP's web
    data is not CC12M.
    """
    rng = np.random.default_rng([seed, _SPLIT_IDS["pretrain"], index])
    if index % 2 == 0:
        shape, colour = str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS)))
        obj = place(rng, shape, colour, str(rng.choice(list(SIZES))), [])
        assert obj is not None  # an empty canvas always has room
        base = Scene(f"pretrain{index:07d}", str(rng.choice(BACKGROUNDS)), [obj])
    else:
        base = sample_scene(rng, f"pretrain{index:07d}")
    group = []
    for k in range(len(SHAPES)):
        objects = []
        for o in base.objects:
            shape = SHAPES[(SHAPES.index(o.shape) + k) % len(SHAPES)]
            angle = o.angle - UPRIGHT[o.shape] + UPRIGHT[shape]  # the same tilt
            objects.append(replace(o, shape=shape, angle=angle))
        scene = Scene(f"{base.key}-{k}", base.background, objects)
        pixels = np.random.default_rng([seed, _SPLIT_IDS["pretrain"], index, 1])
        group.append((describe(scene), render(scene, pixels)[0]))
    return group


def make_single_sample(seed: int, index: int) -> tuple[ShapeObject, str, Image.Image]:
    """One object on a background (the `single` split: zero-shot naming and classification).

    Shapes and colours cycle with the index (shape fastest), so every 36 consecutive samples hold
    each colour-shape pair once; size, place, tilt and background are drawn."""
    rng = np.random.default_rng([seed, _SPLIT_IDS["single"], index])
    shape, colour = SHAPES[index % len(SHAPES)], list(COLOURS)[index // len(SHAPES) % len(COLOURS)]
    background = str(rng.choice(BACKGROUNDS))
    obj = place(rng, shape, colour, str(rng.choice(list(SIZES))), [])
    assert obj is not None  # an empty canvas always has room
    scene = Scene(key=f"single{index:07d}", background=background, objects=[obj])
    return obj, background, render(scene, rng)[0]


def make_pair_sample(seed: int, index: int) -> tuple[Scene, Image.Image, np.ndarray]:
    """The same shape twice, in two different colours (the `pairs` split: attribute
    localization, the paper's "cat" vs "black cat"). Returns the scene, image and attribute mask;
    "red circle" must cover the red circle and not the blue one."""
    rng = np.random.default_rng([seed, _SPLIT_IDS["pairs"], index])
    shape = str(rng.choice(SHAPES))
    colours = [str(c) for c in rng.choice(list(COLOURS), size=2, replace=False)]
    objects: list[ShapeObject] = []
    while len(objects) < 2:
        placed = place(rng, shape, colours[len(objects)], str(rng.choice(list(SIZES))), objects)
        if placed is not None:
            objects.append(placed)
    scene = Scene(key=f"pairs{index:07d}", background=str(rng.choice(BACKGROUNDS)), objects=objects)
    image, _, attr_mask = render(scene, rng)
    return scene, image, attr_mask


def jpeg_bytes(image: Image.Image) -> bytes:
    """Deterministic JPEG: fixed quality and subsampling, no EXIF or other metadata."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return buf.getvalue()


def palette_png_bytes(mask: np.ndarray) -> bytes:
    """Palette PNG of class indices with VOC's colour map (index 255 = ignore)."""
    image = Image.fromarray(mask, "P")
    image.putpalette(vis.palette(256).reshape(-1).tolist())  # the evaluator's VOC colours
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class EncodedSample:
    """A sample as the bytes written to disk (what worker processes send back)."""

    gold: dict
    jpeg: bytes
    shape_png: bytes
    attr_png: bytes


def encode_sample(seed: int, split: str, index: int, captions: str = CLEAN.name) -> EncodedSample:
    scene, image, shape_mask, attr_mask = make_sample(seed, split, index, noise_level(captions))
    return EncodedSample(
        scene.gold(), jpeg_bytes(image), palette_png_bytes(shape_mask), palette_png_bytes(attr_mask)
    )


def encoded_samples(
    spec: WorldSpec, split: str, n: int, workers: int, desc: str, progress: bool
) -> Iterator[EncodedSample]:
    """Samples 0..n-1 in order; `workers` processes render them (order, hence bytes, unchanged)."""
    jobs = [(spec.seed, split, i, spec.captions) for i in range(n)]
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress)
    with bar, mp.get_context("spawn").Pool(workers) if workers > 1 else nullcontext() as pool:
        results = pool.imap(_encode_job, jobs, chunksize=32) if pool else map(_encode_job, jobs)
        for sample in results:
            bar.update()
            yield sample


def _encode_job(job: tuple[int, str, int, str]) -> EncodedSample:
    return encode_sample(*job)


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class WorldSpec:
    """What identifies a generated world; the cache key of everything derived from it."""

    seed: int = 0
    n_train: int = 4000
    n_val: int = 200
    shard_size: int = 1000
    n_single: int = 360
    n_pairs: int = 200
    #: the caption-quality level (`caption_noise.LEVELS`); only captions differ between levels
    captions: str = CLEAN.name

    def __post_init__(self) -> None:
        noise_level(self.captions)  # a KeyError naming the known levels

    @property
    def key(self) -> str:
        """The world's folder name and cache key; a noisy level adds its name and parameters'
        digest (the clean level's key is version 2's, so its worlds and caches stay valid)."""
        noise = noise_level(self.captions)
        suffix = "" if noise.is_clean else f"-c{noise.name}-{noise.digest}"
        return (
            f"v{TOYSHAPES_VERSION}-s{self.seed}-t{self.n_train}-v{self.n_val}-sh{self.shard_size}"
            f"-o{self.n_single}-p{self.n_pairs}{suffix}"
        )


def write_train(root: Path, spec: WorldSpec, workers: int = 1, progress: bool = True) -> list[Path]:
    """Webdataset shards `train/NNNNN.tar` (`KEY.jpg` + `KEY.txt`) and `train/gold.jsonl`."""
    out = root / "train"
    out.mkdir(parents=True, exist_ok=True)
    shards: list[Path] = []
    samples = encoded_samples(spec, "train", spec.n_train, workers, "world: train", progress)
    with open(out / "gold.jsonl", "w", encoding="utf-8") as gold:
        for start in range(0, spec.n_train, spec.shard_size):
            shards.append(out / f"{start // spec.shard_size:05d}.tar")
            with tarfile.open(shards[-1], "w", format=tarfile.USTAR_FORMAT) as tar:
                for sample in islice(samples, spec.shard_size):
                    key = sample.gold["key"]
                    _add_member(tar, f"{key}.jpg", sample.jpeg)
                    _add_member(tar, f"{key}.txt", sample.gold["caption"].encode("utf-8"))
                    gold.write(json.dumps(sample.gold) + "\n")
    return shards


VOC_NAME = "ToyShapes"
PAIRS_VOC_NAME = "ToyShapesPairs"
SHAPE_MASK_DIR = "SegmentationClass"
ATTR_MASK_DIR = "SegmentationClassAttr"
SINGLE_DIR = "single"
CAPTIONS_FILE = "captions.jsonl"


def write_val(root: Path, spec: WorldSpec, workers: int = 1, progress: bool = True) -> Path:
    """VOC layout under `VOCdevkit/ToyShapes/`: JPEGImages, two palette mask folders, val.txt,
    class lists (`shapes.txt`, `attribute_shapes.txt`), `gold.jsonl`, and `captions.jsonl`
    (`{"image", "caption"}` per line: the val images with their alt-text, for retrieval)."""
    base = root / "VOCdevkit" / VOC_NAME
    for sub in ("JPEGImages", SHAPE_MASK_DIR, ATTR_MASK_DIR, "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    keys = []
    with (
        open(base / "gold.jsonl", "w", encoding="utf-8") as gold,
        open(base / CAPTIONS_FILE, "w", encoding="utf-8") as captions,
    ):
        for sample in encoded_samples(spec, "val", spec.n_val, workers, "world: val", progress):
            key = sample.gold["key"]
            (base / "JPEGImages" / f"{key}.jpg").write_bytes(sample.jpeg)
            (base / SHAPE_MASK_DIR / f"{key}.png").write_bytes(sample.shape_png)
            (base / ATTR_MASK_DIR / f"{key}.png").write_bytes(sample.attr_png)
            gold.write(json.dumps(sample.gold) + "\n")
            keys.append(key)
            pair = {"image": f"JPEGImages/{key}.jpg", "caption": sample.gold["caption"]}
            captions.write(json.dumps(pair) + "\n")
    (base / "ImageSets/Segmentation/val.txt").write_text("\n".join(keys) + "\n")
    (base / "shapes.txt").write_text("\n".join(shape_classes()) + "\n")
    (base / "attribute_shapes.txt").write_text("\n".join(attribute_classes()) + "\n")
    return base


def write_single(root: Path, spec: WorldSpec) -> Path:
    """The `single` split as an image folder, `single/<shape>/KEY.jpg` (what `tagalign-eval
    classify` reads), with `single/gold.jsonl` recording each image's shape, colour and size."""
    base = root / SINGLE_DIR
    for shape in SHAPES:
        (base / shape).mkdir(parents=True, exist_ok=True)
    with open(base / "gold.jsonl", "w", encoding="utf-8") as gold:
        for i in range(spec.n_single):
            obj, background, image = make_single_sample(spec.seed, i)
            key = f"single{i:07d}"
            (base / obj.shape / f"{key}.jpg").write_bytes(jpeg_bytes(image))
            record = {
                "key": key,
                "image": f"{obj.shape}/{key}.jpg",
                "shape": obj.shape,
                "colour": obj.colour,
                "size": obj.size,
                "background": background,
            }
            gold.write(json.dumps(record) + "\n")
    return base


def write_pairs(root: Path, spec: WorldSpec) -> Path:
    """The `pairs` split in the VOC layout under `VOCdevkit/ToyShapesPairs/`: images, attribute
    masks (`attribute_classes()` indices), val.txt and gold.jsonl."""
    base = root / "VOCdevkit" / PAIRS_VOC_NAME
    for sub in ("JPEGImages", ATTR_MASK_DIR, "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    keys = []
    with open(base / "gold.jsonl", "w", encoding="utf-8") as gold:
        for i in range(spec.n_pairs):
            scene, image, attr_mask = make_pair_sample(spec.seed, i)
            (base / "JPEGImages" / f"{scene.key}.jpg").write_bytes(jpeg_bytes(image))
            (base / ATTR_MASK_DIR / f"{scene.key}.png").write_bytes(palette_png_bytes(attr_mask))
            record = {"key": scene.key, "background": scene.background}
            gold.write(json.dumps(record | {"scene": [asdict(o) for o in scene.objects]}) + "\n")
            keys.append(scene.key)
    (base / "ImageSets/Segmentation/val.txt").write_text("\n".join(keys) + "\n")
    return base


def generate_world(
    root: str | Path, spec: WorldSpec = WorldSpec(), workers: int = 1, progress: bool = True
) -> Path:
    """Write the whole world under `root/<spec.key>/` once; later calls reuse it (marker file)."""
    world = Path(root) / spec.key
    done = world / "DONE"
    if done.exists():
        return world
    write_train(world, spec, workers, progress)
    write_val(world, spec, workers, progress)
    write_single(world, spec)
    write_pairs(world, spec)
    done.write_text(json.dumps(asdict(spec)) + "\n")
    return world
