"""`--cache-features` epochs vs full-forward epochs, side by side in one run (CPU).

Both runs train the same projector for the same number of epochs over the same JPEG shards; the
cached run first computes the frozen backbone's dense tokens once (reported separately) and then
trains from them. The speed-up grows with the backbone's share of the step (ViT-B/16 >> tiny).

    .venv/bin/python bench/bench_cache_features.py [--model tagalign-tiny-ViT] [--images 256] \
        [--epochs 3]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "train"))

from benchargs import OneLineParser, count
from tagalign_train.config import TrainConfig
from tagalign_train.train import train
from train_helpers import make_tags_db, make_world, save_random_weights


def timed_run(**kwargs) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    result = train(TrainConfig(**kwargs))
    return time.perf_counter() - t0, result.history


def steady_rate(history: list[dict]) -> float:
    """Mean images/s over the logged windows after the first (which includes worker start-up)."""
    windows = history[1:] or history
    return sum(h["images_per_s"] for h in windows) / len(windows)


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--model", default="tagalign-tiny-ViT")
    ap.add_argument("--images", type=count(), default=256)
    ap.add_argument("--epochs", type=count(), default=3)
    ap.add_argument("--batch-size", type=count(), default=32)
    ap.add_argument("--image-size", type=count(), default=64)
    ap.add_argument("--workers", type=count(0), default=2)
    args = ap.parse_args()
    steps = args.epochs * args.images // args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards, samples = make_world(root / "shards", n=args.images, shards=4)
        db = make_tags_db(root / "tags.db", samples)
        weights = save_random_weights(root / "w.pt", model_name=args.model)
        common = {
            "labels": db,
            "data": shards,
            "preset": "toy",
            "model": args.model,
            "pretrained": weights,
            "steps": steps,
            "batch_size": args.batch_size,
            "image_size": args.image_size,
            "workers": args.workers,
            "log_every": max(1, steps // 4),
            "save_every": 10**9,
            "progress": False,
            "text_cache": str(root / "tc"),
        }
        _, full = timed_run(out=str(root / "full"), **common)
        cache = root / "cache"
        first_s, _ = timed_run(out=str(root / "cached1"), cache_features=str(cache), **common)
        cached_s, cached = timed_run(out=str(root / "cached2"), cache_features=str(cache), **common)
    full_ips, cached_ips = steady_rate(full), steady_rate(cached)
    print(
        f"{args.model}, {args.images} images, {args.epochs} epochs = {steps} steps, "
        f"batch {args.batch_size}, "
        f"{args.image_size} px, workers {args.workers}"
    )
    print(f"{'mode':<42}{'images/s':>10}{'s/epoch':>9}")
    for name, ips in (
        ("full forward (augmented JPEGs)", full_ips),
        ("cached features", cached_ips),
    ):
        print(f"{name:<42}{ips:>10.1f}{args.images / ips:>9.2f}")
    print(f"{'speed-up per epoch':<42}{cached_ips / full_ips:>10.2f}x")
    print(
        f"one-off cache build: {first_s - cached_s:.1f} s (wall of first cached run minus second)"
    )


if __name__ == "__main__":
    main()
