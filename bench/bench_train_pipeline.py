"""Does the data pipeline keep the CPU toy preset fed?

Side by side in one run:
  ceiling  — the toy preset's training step (backbone forward, projector forward+backward,
             text tower on the caption tokens, AdamW) on one batch already in memory, repeated;
  pipeline — `tagalign_train.train.train` on real JPEG shards with the default workers
             (decode, RandAugment, RandomErasing, tokenization in DataLoader workers).
Target: pipeline >= 80% of the ceiling. Both use the intra-op thread count the trainer chooses.
A third line times the data pipeline alone, to tell a slow pipeline from CPU contention between
the workers and the training step.

    .venv/bin/python bench/bench_train_pipeline.py [--images 512] [--steps 40] [--workers 2]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "train"))

from benchargs import OneLineParser, count
from tagalign_train.config import PRESETS, TrainConfig
from tagalign_train.data import (
    BatchCollate,
    StepBatches,
    TagAlignDataset,
    index_data,
    join_labels,
    train_transform,
)
from tagalign_train.losses import TagAlignLoss, TagLoss
from tagalign_train.model import build_model
from tagalign_train.optim import param_groups
from tagalign_train.run import TrainStep, _limit_cpu_threads
from tagalign_train.train import train
from tagparse.reader import load_labels
from train_helpers import make_tags_db, make_world, save_random_weights


def ceiling(weights: str, batch: int, size: int, n_tags: int, steps: int) -> float:
    """Images/s of the same training step with the batch already in memory."""
    model = build_model("tagalign-tiny-ViT", weights).train()
    loss = TagAlignLoss(TagLoss())
    step = TrainStep(model, loss, torch.nn.functional.normalize(torch.randn(n_tags, 32), dim=-1))
    opt = torch.optim.AdamW(param_groups([model, loss], 0.05), lr=1e-4, eps=1e-6)
    images = torch.randn(batch, 3, size, size)
    targets = (torch.rand(batch, n_tags) > 0.8).float()
    tokens = model.tokenizer([f"a red circle number {i}" for i in range(batch)])

    def one() -> None:
        terms = step(images, targets, model.encode_tokens(tokens), False)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_([p for p in step.parameters() if p.requires_grad], 5.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return steps * batch / (time.perf_counter() - t0)


def data_only(db: str, shards: list[str], batch: int, size: int, workers: int, steps: int) -> float:
    """Images/s of the data pipeline alone (decode, augment, collate), with no training step."""
    from tagalign_train.preprocess import NORMALIZATIONS
    from torch.utils.data import DataLoader

    labels = load_labels(db)
    index = index_data(shards)
    use, rows, _ = join_labels(index, labels, "skip")
    mean, std = NORMALIZATIONS["imagenet"]
    loader = DataLoader(
        TagAlignDataset(index, use, rows, train_transform(size, mean, std)),
        batch_sampler=StepBatches(len(use), batch, 1, 0, 0, 0, steps + 5),
        num_workers=workers,
        collate_fn=BatchCollate(
            labels, ["object", "attribute"], build_model("tagalign-tiny-ViT", None).tokenizer
        ),
        prefetch_factor=4 if workers else None,
    )
    t0, n = None, 0
    for i, _ in enumerate(loader):
        if i == 4:
            t0, n = time.perf_counter(), 0
        n += batch
    return (n - batch) / (time.perf_counter() - t0)


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--images", type=count(), default=512)
    ap.add_argument("--steps", type=count(), default=40)
    ap.add_argument("--workers", type=count(0), default=TrainConfig.workers)
    args = ap.parse_args()
    toy = PRESETS["toy"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards, samples = make_world(root / "shards", n=args.images, shards=4)
        db = make_tags_db(root / "tags.db", samples)
        weights = save_random_weights(root / "tiny.pt")
        _limit_cpu_threads(args.workers, 1)
        threads = torch.get_num_threads()
        ceil = ceiling(weights, toy["batch_size"], toy["image_size"], 6, args.steps)
        result = train(
            TrainConfig(
                labels=db,
                data=shards,
                out=str(root / "run"),
                preset="toy",
                pretrained=weights,
                steps=args.steps + 5,
                workers=args.workers,
                log_every=5,
                save_every=10**9,
                progress=False,
                text_cache=str(root / "tc"),
            )
        )
        windows = result.history[1:]  # the first window includes worker start-up
        pipeline = sum(h["images_per_s"] for h in windows) / len(windows)
        data = data_only(db, shards, toy["batch_size"], toy["image_size"], args.workers, args.steps)
    print(
        f"toy preset: batch {toy['batch_size']}, {toy['image_size']} px, workers {args.workers}, "
        f"intra-op threads {threads}, {args.images} JPEGs in 4 shards"
    )
    print(f"{'mode':<40}{'images/s':>10}")
    print(f"{'ceiling (batch in memory)':<40}{ceil:>10.1f}")
    print(f"{'pipeline (shards, default workers)':<40}{pipeline:>10.1f}")
    print(f"{'data pipeline alone (no training)':<40}{data:>10.1f}")
    print(f"{'ratio pipeline / ceiling':<40}{pipeline / ceil:>10.1%}   (target >= 80%)")


if __name__ == "__main__":
    main()
