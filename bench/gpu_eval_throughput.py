"""GPU: evaluator throughput with ViT-B/16 (random weights) under the tagalign-v3 protocol.

    python bench/gpu_eval_throughput.py [--images 500] [--crop-batch 64] [--images-per-step 8]

500 synthetic 500x375 images (VOC-sized) go through the full path: keep-ratio resize to short side
448, 448 crops at stride 56 (4 windows per image here), surgery dense features + conv projector and
the CLIP blend, background constant, argmax and a device-side confusion-matrix update. The towers
are random-init open_clip weights (`pretrained=None`; none can be downloaded on the GPU machine,
and the speed does not depend on their values). Prints images/s and the minutes each of the ten
benchmarks would take at that rate (by val-set size; real images of other shapes have more or
fewer windows, so this is a VOC-shaped estimate).

`measure()` is what `bench/gpu_check.py` calls (and, at tiny sizes on the CPU, its --dry-run).
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
import torch
from benchargs import OneLineParser, count
from tagalign_eval.datasets import PAPER_ORDER, get_benchmark
from tagalign_eval.inference import Segmenter, encode_classes
from tagalign_eval.metrics import ConfusionMatrix
from tagalign_eval.models import EvalModel
from tagalign_eval.protocols import resolve_protocol
from tagalign_train.model import build_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(
    images: int = 500,
    crop_batch: int = 64,
    images_per_step: int = 8,
    amp: bool = False,
    device: torch.device | None = None,
    model_name: str = "ViT-B-16",
    image_hw: tuple[int, int] = (375, 500),
    protocol_overrides: dict | None = None,
) -> dict:
    """Images/s of sliding-window segmentation on VOC's protocol; a JSON-ready dict with the
    minutes each paper benchmark's val set would take at that rate."""
    device = device or torch.device("cuda")
    net = build_model(model_name, None, dense="surgery", projector="conv", device=device).eval()
    model = EvalModel(net, {"kind": "checkpoint"})
    spec = get_benchmark("voc")
    protocol = resolve_protocol("tagalign-v3", spec.protocol_family, protocol_overrides)
    classes = encode_classes(model.encode_text, spec.class_list(), protocol.templates)
    seg = Segmenter(
        model.dense_fn(),
        classes,
        protocol,
        net.image_mean,
        net.image_std,
        device=device,
        crop_batch=crop_batch,
    )
    rng = np.random.default_rng(0)
    pool = [(rng.random((*image_hw, 3)) * 255).astype(np.uint8) for _ in range(16)]
    gt = torch.from_numpy(rng.integers(0, 21, image_hw)).to(device)
    cm = ConfusionMatrix(21, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    with autocast:
        seg.segment(pool[:2])
        _sync(device)
        start = time.perf_counter()
        done = 0
        while done < images:
            n = min(images_per_step, images - done)
            for label in seg.segment([pool[(done + i) % len(pool)] for i in range(n)]):
                cm.update(label, gt)
            done += n
        _sync(device)
    rate = images / (time.perf_counter() - start)
    minutes = {name: (get_benchmark(name).val_size or 0) / rate / 60 for name in PAPER_ORDER}
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": model_name,
        "weights": "random init (open_clip create_model, pretrained=None)",
        "protocol": "tagalign-v3",
        "crop": protocol.crop,
        "stride": protocol.stride,
        "image_hw": list(image_hw),
        "images": images,
        "crop_batch": crop_batch,
        "images_per_step": images_per_step,
        "amp_bf16": amp,
        "images_per_s": rate,
        "benchmark_minutes": minutes,
        "all_ten_minutes": sum(minutes.values()),
        "peak_memory_gib": (
            torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        ),
    }


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--images", type=count(), default=500)
    ap.add_argument("--crop-batch", type=count(), default=64)
    ap.add_argument("--images-per-step", type=count(), default=8)
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast for the forward")
    args = ap.parse_args()
    r = measure(args.images, args.crop_batch, args.images_per_step, args.amp)
    print(
        f"{r['device']}: {r['images_per_s']:.1f} img/s over {r['images']} 500x375 images "
        f"(tagalign-v3, crop batch {r['crop_batch']}, {r['images_per_step']} img/step, "
        f"amp {r['amp_bf16']}); peak memory {r['peak_memory_gib']:.1f} GiB"
    )
    for name, minutes in r["benchmark_minutes"].items():
        print(f"  {name:14s} {get_benchmark(name).val_size or 0:6d} images  {minutes:6.1f} min")
    print(f"  all ten        {r['all_ten_minutes']:6.1f} min")


if __name__ == "__main__":
    main()
