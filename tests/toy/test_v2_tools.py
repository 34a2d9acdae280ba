"""The toy world v2's measuring tools: the linear probe, the gold-tag backend and the figures."""

from __future__ import annotations

import json

import numpy as np
import torch
from tagalign_toy import figures, gold_backend
from tagalign_toy import probe as pr
from tagparse.db import TagsDB
from tagparse.export import export_jsonl
from tagparse.pipeline import run_parse


def test_probe_reads_what_the_tokens_hold_and_not_more():
    """Tokens that carry the class of their patch give a probe near 100% mIoU; tokens of pure
    noise give one near the majority-class rate. Masks are 4x the token grid (bilinear logits)."""
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 3, (64, 4, 4), generator=g).repeat_interleave(4, 1)
    masks = masks.repeat_interleave(4, 2)  # 16x16 masks made of 4x4 blocks
    per_patch = masks[:, ::4, ::4]
    informative = torch.nn.functional.one_hot(per_patch, 3).permute(0, 3, 1, 2).float() * 4
    informative = informative + 0.1 * torch.randn(informative.shape, generator=g)
    noise = torch.randn(informative.shape, generator=g)
    train, val = slice(0, 48), slice(48, 64)
    good = pr.fit_probe(informative[train], masks[train], 3, steps=200, batch=16)
    bad = pr.fit_probe(noise[train], masks[train], 3, steps=200, batch=16)
    assert pr.probe_miou(good, informative[val], masks[val]) > 80
    assert pr.probe_miou(bad, noise[val], masks[val]) < 40


def test_gold_backend_answers_with_the_generators_tags(tmp_path):
    from tagalign_toy import generator as gen

    spec = gen.WorldSpec(seed=2, n_train=12, n_val=1, shard_size=12, n_single=1, n_pairs=1)
    world = gen.generate_world(tmp_path / "w", spec, progress=False)
    gold = world / "train" / "gold.jsonl"
    gold_backend.register()
    db = tmp_path / "tags.db"
    shards = [str(p) for p in sorted((world / "train").glob("*.tar"))]
    summary = run_parse(db, shards, gold_backend.NAME, {"gold": str(gold)}, progress=False)
    assert summary.parsed == 12
    records = {json.loads(line)["key"]: json.loads(line) for line in gold.read_text().splitlines()}
    tags = TagsDB.open(db)
    try:
        export_jsonl(tags, str(tmp_path / "parses.jsonl"))
    finally:
        tags.close()
    parses = [json.loads(line) for line in (tmp_path / "parses.jsonl").read_text().splitlines()]
    assert {p["key"].rsplit("/", 1)[-1] for p in parses} == set(records)
    for p in parses:
        record = records[p["key"].rsplit("/", 1)[-1]]
        assert sorted(p["objects"]) == record["objects"], p
        assert sorted(p["attributes"]) == record["attributes"], p


def test_overlay_grid_scales_every_panel_and_names_the_columns():
    image = np.zeros((8, 8, 3), np.uint8)
    truth = np.zeros((8, 8), np.uint8)
    truth[2:5, 2:5] = 1
    pred = np.zeros((8, 8), np.uint8)
    pred[2:5, 2:6] = 2
    grid = figures.overlay_grid(
        [image, image], [truth, truth], {"a": [pred, pred]}, ["bg", "x", "y"], scale=4
    )
    assert grid.width == 3 * 8 * 4
    pixels = np.asarray(grid)
    # The prediction panel of the first row holds class 2's colour, 4x4 blocks per pixel.
    colour = figures.palette(3)[2]
    block = pixels[
        figures.HEADER + 2 * 4 : figures.HEADER + 5 * 4, 2 * 8 * 4 + 2 * 4 : 2 * 8 * 4 + 6 * 4
    ]
    assert (block == colour).all()


def test_seed_spread_plot_draws_a_dot_per_seed():
    plot = figures.seed_spread_plot({"a": [1.0, 2.0, 3.0], "b": [2.5]}, "t")
    pixels = np.asarray(plot)
    red = (pixels == np.array([220, 60, 40], np.uint8)).all(-1)
    assert red.sum() > 0
    rows = np.unique(np.nonzero(red)[0] // 28)
    assert len(rows) == 2  # one band of dots per label
