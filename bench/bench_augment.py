"""Is timm's augmentation (the paper preset's, as TagAlign configures it) slower than the
torchvision pipeline it replaced?

Side by side in one run, on one CPU thread, per image from a decoded photo-like JPEG to the
normalised, erased tensor a batch is stacked from (decoding is common to both and left out):
  timm        — `tagalign_train.data.train_transform`: timm's RandomResizedCrop (bilinear), flip,
                RandAugment rand-m9-mstd0.5-inc1, ToTensor + Normalize, RandomErasing (pixel,
                p 0.25), with `seed_augmentation` before each image, as the dataset does;
  torchvision — the pipeline before issue 15: torchvision's RandomResizedCrop (bicubic), flip,
                RandAugment(2, 9) to uint8, the batch normalised at once, then torchvision's
                RandomErasing (p 0.25, per-pixel normal noise) per image, torch seeded per image.
Rounds alternate the two; each figure is the median round. A ratio above 1 means timm is faster.

    .venv/bin/python bench/bench_augment.py [--images 128] [--rounds 5] [--size 224]
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from benchargs import OneLineParser, count
from PIL import Image
from tagalign_train.data import seed_augmentation, train_transform
from tagalign_train.preprocess import NORMALIZATIONS, normalize
from torchvision import transforms as T


def photos(n: int, seed: int = 0) -> list[Image.Image]:
    """Decoded JPEGs of web-photo sizes (CC12M-like, 300-640 px a side) with smooth structure,
    edges and noise, so that every op (equalize, sharpness, shear, ...) does real work."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = (int(v) for v in rng.integers(300, 641, 2))
        y, x = np.mgrid[0:h, 0:w] / max(w, h)
        a = np.stack(
            [
                128 + 90 * np.sin(2 * np.pi * (f * x + g * y) + p)
                for f, g, p in rng.uniform([1, 1, 0], [6, 6, 6], (3, 3))
            ],
            -1,
        )
        top, left = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        a[top : top + h // 3, left : left + w // 3] = rng.uniform(0, 255, 3)
        a += rng.normal(0, 12, a.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        img = Image.open(buf)
        img.load()
        out.append(img.convert("RGB"))
    return out


def timm_batch(size: int, mean, std) -> Callable[[list[Image.Image]], torch.Tensor]:
    transform = train_transform(size, mean, std)

    def run(images: list[Image.Image]) -> torch.Tensor:
        out = []
        for k, img in enumerate(images):
            seed_augmentation(k)
            out.append(transform(img))
        return torch.stack(out)

    return run


def torchvision_batch(size: int, mean, std) -> Callable[[list[Image.Image]], torch.Tensor]:
    per_image = T.Compose(
        [
            T.RandomResizedCrop(size, interpolation=T.InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(),
            T.RandAugment(num_ops=2, magnitude=9),
            T.PILToTensor(),
        ]
    )
    erase = T.RandomErasing(p=0.25, value="random")

    def run(images: list[Image.Image]) -> torch.Tensor:
        out = []
        for k, img in enumerate(images):
            torch.default_generator.manual_seed(k)
            out.append(per_image(img))
        x = normalize(torch.stack(out), mean, std)
        for k, img in enumerate(x):
            torch.default_generator.manual_seed(k ^ 0x5EED)
            x[k] = erase(img)
        return x

    return run


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=count(), default=128)
    ap.add_argument("--rounds", type=count(), default=5)
    ap.add_argument("--size", type=count(), default=224)
    args = ap.parse_args()
    torch.set_num_threads(1)
    mean, std = NORMALIZATIONS["imagenet"]
    images = photos(args.images)
    runs = {
        "timm (paper preset)": timm_batch(args.size, mean, std),
        "torchvision (before issue 15)": torchvision_batch(args.size, mean, std),
    }
    for run in runs.values():
        run(images[:8])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(images)
            times[name].append(time.perf_counter() - t0)
    rate = {name: args.images / statistics.median(ts) for name, ts in times.items()}
    print(
        f"augmentation to a normalised erased tensor: {args.size} px, {args.images} decoded "
        f"JPEGs (300-640 px), 1 thread, median of {args.rounds} alternating rounds"
    )
    print(f"{'pipeline':<32}{'images/s':>10}{'ms/image':>10}")
    for name, r in rate.items():
        print(f"{name:<32}{r:>10.1f}{1000 / r:>10.2f}")
    timm_rate, tv_rate = rate.values()
    print(f"{'ratio timm / torchvision':<32}{timm_rate / tv_rate:>10.2f}")


if __name__ == "__main__":
    main()
