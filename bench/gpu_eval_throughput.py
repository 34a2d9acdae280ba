"""GPU: evaluator throughput with ViT-B/16 (random weights) under the tagalign-v3 protocol.

    python bench/gpu_eval_throughput.py [--images 500] [--crop-batch 64] [--images-per-step 8]

500 synthetic 500x375 images (VOC-sized) go through the full path: keep-ratio resize to short side
448, 448 crops at stride 56 (4 windows per image here), surgery dense features + conv projector and
the CLIP blend, background constant, argmax and a device-side confusion-matrix update. Prints
images/s and the minutes each of the ten benchmarks would take at that rate (by val-set size; real
images of other shapes have more or fewer windows, so this is a VOC-shaped estimate).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from benchargs import OneLineParser, count
from tagalign_eval.datasets import PAPER_ORDER, get_benchmark
from tagalign_eval.inference import Segmenter, encode_classes
from tagalign_eval.metrics import ConfusionMatrix
from tagalign_eval.models import EvalModel
from tagalign_eval.protocols import resolve_protocol
from tagalign_train.model import build_model


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--images", type=count(), default=500)
    ap.add_argument("--crop-batch", type=count(), default=64)
    ap.add_argument("--images-per-step", type=count(), default=8)
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast for the forward")
    args = ap.parse_args()
    device = torch.device("cuda")
    net = build_model("ViT-B-16", None, dense="surgery", projector="conv", device=device).eval()
    model = EvalModel(net, {"kind": "checkpoint"})
    spec = get_benchmark("voc")
    protocol = resolve_protocol("tagalign-v3", spec.protocol_family)
    classes = encode_classes(model.encode_text, spec.class_list(), protocol.templates)
    seg = Segmenter(
        model.dense_fn(),
        classes,
        protocol,
        net.image_mean,
        net.image_std,
        device=device,
        crop_batch=args.crop_batch,
    )
    rng = np.random.default_rng(0)
    pool = [(rng.random((375, 500, 3)) * 255).astype(np.uint8) for _ in range(16)]
    gt = torch.from_numpy(rng.integers(0, 21, (375, 500))).to(device)
    cm = ConfusionMatrix(21, device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.amp):
        seg.segment(pool[:2])
        torch.cuda.synchronize()
        start = time.perf_counter()
        done = 0
        while done < args.images:
            n = min(args.images_per_step, args.images - done)
            for label in seg.segment([pool[(done + i) % len(pool)] for i in range(n)]):
                cm.update(label, gt)
            done += n
        torch.cuda.synchronize()
    rate = args.images / (time.perf_counter() - start)
    print(
        f"{torch.cuda.get_device_name()}: {rate:.1f} img/s over {args.images} 500x375 images "
        f"(tagalign-v3, crop batch {args.crop_batch}, {args.images_per_step} img/step, "
        f"amp {args.amp}); peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    )
    total = 0.0
    for name in PAPER_ORDER:
        n = get_benchmark(name).val_size or 0
        minutes = n / rate / 60
        total += minutes
        print(f"  {name:14s} {n:6d} images  {minutes:6.1f} min")
    print(f"  all ten        {total:6.1f} min")


if __name__ == "__main__":
    main()
