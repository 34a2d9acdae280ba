"""The toy CLIP: trained on a generated world, saved as open_clip weights, reloaded through
`open_clip.create_model_and_transforms(name, pretrained=PATH)`, and cached by its recipe."""

from __future__ import annotations

import open_clip
import pytest
import torch
from tagalign_eval.toyworld import clip_pretrain as cp
from tagalign_eval.toyworld import generator as g

RECIPE = cp.PretrainRecipe(steps=3, batch_size=8, warmup=1, seed=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return g.generate_world(tmp_path_factory.mktemp("w"), g.WorldSpec(seed=2, n_train=24, n_val=4,
                                                                     shard_size=12), progress=False)


def test_pretrained_weights_load_like_real_ones_and_are_cached(world, tmp_path):
    weights = cp.pretrain_toy_clip(world, tmp_path, RECIPE, progress=False)
    model, preprocess, _ = cp.load_toy_clip(weights)
    saved = torch.load(weights, map_location="cpu")
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    fresh = open_clip.create_model(cp.TOY_CLIP_NAME, pretrained=None).state_dict()
    assert not torch.equal(fresh["visual.conv1.weight"], loaded["visual.conv1.weight"])
    assert preprocess.transforms[0].size in (g.IMAGE_SIZE, (g.IMAGE_SIZE, g.IMAGE_SIZE))

    stamp = weights.stat().st_mtime_ns
    assert cp.pretrain_toy_clip(world, tmp_path, RECIPE, progress=False) == weights
    assert weights.stat().st_mtime_ns == stamp  # reused, not retrained
    longer = cp.cache_path(world, tmp_path, cp.PretrainRecipe(steps=4, batch_size=8, warmup=1, seed=1))
    assert longer != weights


def test_training_is_deterministic(world, tmp_path):
    a = cp.pretrain_toy_clip(world, tmp_path / "a", RECIPE, progress=False)
    b = cp.pretrain_toy_clip(world, tmp_path / "b", RECIPE, progress=False)
    sa, sb = torch.load(a), torch.load(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pairs_are_read_from_the_shards(world):
    images, captions = cp.load_pairs(world)
    assert images.shape == (24, 3, g.IMAGE_SIZE, g.IMAGE_SIZE) and images.dtype == torch.uint8
    assert captions[0] == g.make_sample(2, "train", 0)[0].caption


def test_thread_cap_is_undone_after_pretraining(world, tmp_path):
    before = torch.get_num_threads()
    cp.pretrain_toy_clip(world, tmp_path, RECIPE, progress=False, threads=1)
    assert torch.get_num_threads() == before
