"""CPU, tiny model: images/s of batched sliding windows vs a one-crop-at-a-time loop, same images.

    .venv/bin/python bench/bench_eval_sliding.py [--images 8] [--threads 2]

Both runs use the same Segmenter code and protocol (tagalign-v3 windows: short side 448, crop 448,
stride 56 on 500x375 images -> 4 windows each); only the number of crops per forward differs
(`--crop-batch` crops from `--images-per-step` images vs 1). The outputs are checked to agree.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import open_clip
import tagalign_train.backbone  # noqa: F401  (registers the tiny configs)
import torch
from benchargs import OneLineParser, count
from tagalign_eval.datasets.classes import builtin_class_list
from tagalign_eval.inference import Segmenter, encode_classes
from tagalign_eval.models import load_eval_model
from tagalign_eval.protocols import resolve_protocol

TINY = "tagalign-tiny-ViT"


def timed(seg: Segmenter, images: list[np.ndarray], per_step: int) -> tuple[float, list]:
    seg.segment(images[:1])  # warm-up
    start = time.perf_counter()
    labels = []
    for i in range(0, len(images), per_step):
        labels += seg.segment(images[i : i + per_step])
    return len(images) / (time.perf_counter() - start), labels


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--images", type=count(), default=8)
    ap.add_argument("--threads", type=count(), default=2)
    ap.add_argument("--crop-batch", type=count(), default=32)
    ap.add_argument("--images-per-step", type=count(), default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        weights = Path(tmp) / "tiny.pt"
        torch.save(open_clip.create_model(TINY, pretrained=None).state_dict(), weights)
        model = load_eval_model(baseline="surgery", model_name=TINY, pretrained=str(weights))
    protocol = resolve_protocol("tagalign-v3", "voc")
    classes = encode_classes(model.encode_text, builtin_class_list("voc"), protocol.templates)
    rng = np.random.default_rng(0)
    images = [(rng.random((375, 500, 3)) * 255).astype(np.uint8) for _ in range(args.images)]
    make = lambda cb: Segmenter(
        model.dense_fn(),
        classes,
        protocol,
        model.model.image_mean,
        model.model.image_std,
        crop_batch=cb,
    )
    single_rate, single = timed(make(1), images, 1)
    batched_rate, batched = timed(make(args.crop_batch), images, args.images_per_step)
    agree = np.mean([float((a == b).float().mean()) for a, b in zip(single, batched)])
    print(
        f"images: {args.images} x 500x375, protocol tagalign-v3 (448 crops, stride 56), "
        f"{args.threads} threads, model {TINY}"
    )
    print(f"one crop at a time : {single_rate:7.2f} img/s")
    print(
        f"batched ({args.crop_batch} crops, {args.images_per_step} img/step): "
        f"{batched_rate:7.2f} img/s"
    )
    print(f"speed-up           : {batched_rate / single_rate:7.2f}x  (target >= 3x)")
    print(f"label agreement    : {100 * agree:.3f}% of pixels")


if __name__ == "__main__":
    main()
