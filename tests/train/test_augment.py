"""The paper preset's augmentation is timm's, configured as TagAlign's `datasets/builder.py` does,
and an image's augmentation depends only on its seed, in the main process or a DataLoader worker."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from tagalign_train.data import (
    StepBatches,
    TagAlignDataset,
    index_data,
    posterize,
    seed_augmentation,
    train_transform,
)
from tagalign_train.preprocess import NORMALIZATIONS, normalize
from timm.data import create_transform
from torch.utils.data import DataLoader
from torchvision.transforms import InterpolationMode, PILToTensor

IMAGENET = NORMALIZATIONS["imagenet"]
CLIP = NORMALIZATIONS["clip"]
#: timm's `_RAND_INCREASING_TRANSFORMS`, the op set `inc1` selects (timm 1.0 auto_augment.py).
INCREASING_OPS = [
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
]


def tagalign_timm(size: int = 224, mean=IMAGENET[0], std=IMAGENET[1]):
    """The call in TagAlign's datasets/builder.py (its size and timm's default mean/std aside)."""
    return create_transform(
        size,
        is_training=True,
        color_jitter=0.4,
        auto_augment="rand-m9-mstd0.5-inc1",
        re_prob=0.25,
        re_mode="pixel",
        re_count=1,
        interpolation="bilinear",
        mean=mean,
        std=std,
    )


def settings(transform) -> dict:
    """Every op's class and the parameters that decide what it draws and does."""
    rrc, flip, ra, to_tensor, norm, erase = transform.transforms
    return {
        "classes": [type(t).__name__ for t in transform.transforms],
        "rrc": (rrc.size, rrc.scale, rrc.ratio, rrc.interpolation),
        "flip": flip.p,
        "ra": (ra.num_layers, ra.choice_weights),
        "ops": [
            (op.name, op.prob, op.magnitude, op.magnitude_std, op.magnitude_max, op.kwargs)
            for op in ra.ops
        ],
        "op_hparams": [op.hparams for op in ra.ops],
        "to_tensor": type(to_tensor).__name__,
        "norm": norm.mean.tolist() + norm.std.tolist(),
        "erase": {k: v for k, v in vars(erase).items()},
    }


def test_paper_transform_has_exactly_timms_ops_and_parameters():
    ours = settings(train_transform(224, *IMAGENET))
    assert ours == settings(tagalign_timm())
    # and what those are, pinned from the paper's configuration and timm's source
    assert ours["classes"] == [
        "RandomResizedCropAndInterpolation",
        "RandomHorizontalFlip",
        "RandAugment",
        "MaybeToTensor",
        "Normalize",
        "RandomErasing",
    ]
    assert ours["rrc"] == ((224, 224), (0.08, 1.0), (3 / 4, 4 / 3), InterpolationMode.BILINEAR)
    assert ours["flip"] == 0.5 and ours["ra"] == (2, None)
    fill = (124, 116, 104)  # round(255 * ImageNet mean)
    assert ours["ops"] == [
        (name, 0.5, 9, 0.5, None, {"fillcolor": fill, "resample": Image.BILINEAR})
        for name in INCREASING_OPS
    ]
    assert all(h["translate_const"] == 100 for h in ours["op_hparams"])  # int(224 * 0.45)
    assert ours["norm"] == pytest.approx([*IMAGENET[0], *IMAGENET[1]])
    erase = ours["erase"]
    assert (erase["probability"], erase["min_area"], erase["max_area"]) == (0.25, 0.02, 1 / 3)
    assert erase["log_aspect_ratio"] == (math.log(0.3), math.log(1 / 0.3))
    assert (erase["mode"], erase["per_pixel"], erase["rand_color"]) == ("pixel", True, False)
    assert (erase["min_count"], erase["max_count"], erase["num_splits"]) == (1, 1, 0)


def test_only_posterize_runs_other_code_than_timms():
    ours, theirs = (
        t.transforms[2].ops for t in (train_transform(32, *IMAGENET), tagalign_timm(32))
    )
    assert [o.aug_fn for o in ours] == [
        posterize if t.name == "PosterizeIncreasing" else t.aug_fn for t in theirs
    ]


@pytest.mark.parametrize("magnitude", [0, 10])
def test_every_op_runs_at_both_ends_of_its_magnitude_range(magnitude):
    """Magnitude noise clips to [0, 10]; at 10 PosterizeIncreasing keeps 0 bits: a black image."""
    img = photo(np.random.default_rng(2), 40, 30)
    for op in train_transform(32, *IMAGENET).transforms[2].ops:
        op.magnitude, op.magnitude_std, op.prob = magnitude, 0, 1.0
        out = np.asarray(op(img))
        assert out.shape == (30, 40, 3), op.name
        if op.name == "PosterizeIncreasing":
            expected = ImageOps.posterize(img, 4) if magnitude == 0 else Image.new("RGB", (40, 30))
            assert np.array_equal(out, np.asarray(expected))


def test_size_and_normalisation_come_from_the_run():
    ours = settings(train_transform(64, *CLIP))
    assert ours == settings(tagalign_timm(64, *CLIP))
    assert ours["rrc"][0] == (64, 64) and ours["norm"] == pytest.approx([*CLIP[0], *CLIP[1]])
    assert ours["ops"][0][5]["fillcolor"] == tuple(round(255 * m) for m in CLIP[0])
    assert ours["op_hparams"][0]["translate_const"] == 28


def test_timm_normalisation_is_the_one_the_evaluator_uses():
    """timm's ToTensor + Normalize give bit for bit what `preprocess.normalize` gives at eval."""
    img = photo(np.random.default_rng(1), 64, 48)
    tail = tagalign_timm(32).transforms[3:5]
    timm_x = tail[1](tail[0](img))
    assert torch.equal(timm_x, normalize(PILToTensor()(img), *IMAGENET))


def photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A photo-like image: smooth structure, edges and sensor noise (so every op changes it)."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = [
        128 + 90 * np.sin(2 * np.pi * (f * x + g * y) + p)
        for f, g, p in rng.uniform([1, 1, 0], [4, 4, 6], (3, 3))
    ]
    a = np.stack(channels, -1)
    a[height // 3 : height // 2, width // 4 : width // 2] = rng.uniform(0, 255, 3)  # an object
    a += rng.normal(0, 12, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


@pytest.fixture
def photos(tmp_path):
    """A CSV dataset of JPEG photos of assorted sizes, read through the training dataset."""
    rng = np.random.default_rng(0)
    lines = ["filename,caption"]
    for i, (w, h) in enumerate([(320, 240), (240, 320), (500, 375), (64, 64)]):
        photo(rng, w, h).save(tmp_path / f"{i}.jpg", quality=90)
        lines.append(f"{i}.jpg,photo {i}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    index = index_data([str(tmp_path / "train.csv")])
    n = len(index)
    return TagAlignDataset(index, np.arange(n), np.full(n, -1), train_transform(96, *IMAGENET))


def test_same_tensor_as_timms_transform_with_equal_seeds(photos):
    reference = tagalign_timm(96)
    outputs = {}
    for i in range(len(photos)):
        for seed in (0, 7, 2**40 + 3, 2**62 + 11):
            ours = photos[(i, seed)][0]
            seed_augmentation(seed)
            theirs = reference(photos.load_image(i))
            assert ours.dtype == torch.float32 and ours.shape == (3, 96, 96)
            assert torch.equal(ours, theirs), (i, seed)
            outputs[(i, seed)] = ours
    assert len({o.sum().item() for o in outputs.values()}) == len(outputs)


def draws() -> tuple[list[float], list[float], list[float]]:
    """Four draws from each generator the augmentation uses: Python's, numpy's, torch's."""
    return (
        [random.random() for _ in range(4)],
        np.random.random(4).tolist(),
        torch.rand(4).tolist(),
    )


@pytest.mark.parametrize("seed", [7, 2**40 + 7, 2**62 + 2**33 + 5])
def test_generators_are_seeded_apart_and_from_all_the_bits(seed):
    """StepBatches' seeds have 63 bits; seeds that differ above bit 32 must not share draws, and
    no two generators may replay one stream (the crop would then decide the op choice)."""
    seed_augmentation(seed)
    first = draws()
    seed_augmentation(seed)
    assert draws() == first
    assert first[0] != first[1] and first[0] != first[2] and first[1] != first[2]
    seed_augmentation(seed + 2**40)
    assert all(a != b for a, b in zip(draws(), first))


def test_worker_processes_augment_exactly_as_the_main_process(photos):
    """The DataLoader's workers (each with its own RNG state) give what one process gives."""
    order = StepBatches(len(photos), 2, 1, 0, seed=5, start=0, stop=4)
    loader = DataLoader(photos, batch_sampler=order, num_workers=2, collate_fn=list)
    for batch, items in zip(loader, order):
        for (image, *_), item in zip(batch, items):
            assert torch.equal(image, photos[item][0])
