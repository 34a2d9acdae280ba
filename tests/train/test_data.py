"""Reading shards and CSVs, joining labels by key, deterministic and resumable data order."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from tagalign_train.data import (
    BatchCollate,
    StepBatches,
    TagAlignDataset,
    index_data,
    join_labels,
    plain_transform,
    train_transform,
)
from tagalign_train.errors import TrainError
from tagparse.reader import load_labels
from train_helpers import make_tags_db, make_world

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_shards_with_json_captions_and_a_corrupt_image(tmp_path):
    shards, samples = make_world(
        tmp_path / "s", n=6, shards=1, caption_ext="json", corrupt=("000000002",)
    )
    db = make_tags_db(tmp_path / "tags.db", samples)
    index = index_data(shards)
    assert index.keys == sorted(samples)
    use, rows, _stats = join_labels(index, load_labels(db), "skip")
    ds = TagAlignDataset(index, use, rows, plain_transform(32))
    assert ds.caption(0) == samples[index.keys[0]][0]
    image, caption, _row, skipped, _ = ds[(2, 0)]  # the corrupt one: replaced by the next sample
    assert skipped == 1 and caption == samples[index.keys[3]][0] and image.shape == (3, 32, 32)
    collate = BatchCollate(load_labels(db), ["object", "attribute"])
    batch = collate([ds[(i, 0)] for i in range(6)])
    assert batch["skipped"] == 1 and batch["images"].shape == (6, 3, 32, 32)
    assert torch.equal(batch["images"][2], image)  # images come from the transform as they are
    labels = load_labels(db)
    vocab = labels.vocab["object"] + labels.vocab["attribute"]
    _caption0, objects, attributes = samples[index.keys[0]]
    assert {vocab[i] for i in torch.nonzero(batch["targets"][0]).flatten().tolist()} == set(
        objects + attributes
    )


def test_csv_layout_and_unlabeled_counts(tmp_path):
    _shards, samples = make_world(tmp_path / "s", n=4, shards=1)
    from PIL import Image

    (tmp_path / "img").mkdir()
    with open(tmp_path / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "caption"])
        for i, key in enumerate(sorted(samples)):
            Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(tmp_path / "img" / f"{key}.jpg")
            w.writerow([f"img/{key}.jpg", samples[key][0]])
    labelled = dict(list(samples.items())[:3])
    db = make_tags_db(tmp_path / "tags.db", {f"img/{k}.jpg": v for k, v in labelled.items()})
    index = index_data([str(tmp_path / "train.csv")])
    use, rows, stats = join_labels(index, load_labels(db), "skip")
    assert (stats.data_samples, stats.labelled, stats.unlabelled) == (4, 3, 1) and len(use) == 3
    use, rows, stats = join_labels(index, load_labels(db), "keep")
    assert len(use) == 4 and rows[-1] == -1
    ds = TagAlignDataset(index, use, rows, plain_transform(32))
    assert ds[(3, 0)][1] == samples[sorted(samples)[3]][0]


def test_no_key_overlap_names_counts_and_examples(tmp_path, world):
    shards, _samples, _ = world
    other = make_tags_db(tmp_path / "other.db", {"zz1": ("a red circle", ["circle"], ["red"])})
    with pytest.raises(
        TrainError, match=r"48 samples, e\.g\. '000000000'.*1 labelled, e\.g\. 'zz1'"
    ):
        join_labels(index_data(shards), load_labels(other), "skip")


def test_step_batches_are_seeded_resumable_and_split_across_ranks():
    full = StepBatches(10, 4, 1, 0, seed=3, start=0, stop=6)
    batches = list(full)
    assert list(StepBatches(10, 4, 1, 0, seed=3, start=0, stop=6)) == batches
    assert list(StepBatches(10, 4, 1, 0, seed=3, start=4, stop=6)) == batches[4:]
    first_epoch = [p for b in batches for p, _ in b][:10]
    assert sorted(first_epoch) == list(range(10))
    assert [p for b in list(StepBatches(10, 4, 1, 0, seed=4, start=0, stop=6)) for p, _ in b] != [
        p for b in batches for p, _ in b
    ]
    two = [StepBatches(10, 2, 2, r, seed=3, start=0, stop=6) for r in (0, 1)]
    for m in range(6):
        assert two[0].positions(m) + two[1].positions(m) == batches[m]


def test_augmentation_is_fixed_by_seed(world):
    shards, _samples, db = world
    labels = load_labels(db)
    index = index_data(shards)
    use, rows, _ = join_labels(index, labels, "skip")
    ds = TagAlignDataset(index, use, rows, train_transform(32, MEAN, STD))
    collate = BatchCollate(labels, ["object"])
    items = [(i, 1000 + i) for i in range(8)]
    a = collate([ds[it] for it in items])["images"]
    b = collate([ds[it] for it in items])["images"]
    c = collate([ds[(i, 2000 + i)] for i in range(8)])["images"]
    assert torch.equal(a, b) and all(not torch.equal(x, y) for x, y in zip(a, c))
    assert a.dtype == torch.float32 and np.isfinite(a.numpy()).all()
