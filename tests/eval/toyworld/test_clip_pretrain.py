"""The toy CLIP: trained on the generator's sibling groups, saved as open_clip safetensors,
reloaded through `open_clip.create_model_and_transforms(name, pretrained=PATH)`, cached by its
recipe, and shipped (fp16) for the default recipe."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import load_file
from tagalign_eval.toyworld import clip_pretrain as cp
from tagalign_eval.toyworld import generator as g

TINY = cp.PretrainRecipe(groups=6, siblings=2, steps=3, batch_size=4, warmup=1, seed=1)


def test_sibling_groups_differ_only_in_shape():
    group = g.make_sibling_group(5, 11, 3)
    base, _ = group[0]
    assert [s.key for s, _ in group] == [f"pretrain{11:07d}-{k}" for k in range(3)]
    for scene, image in group[1:]:
        assert scene.background == base.background
        for obj, ref in zip(scene.objects, base.objects, strict=True):
            assert (obj.colour, obj.size, obj.cx, obj.cy) == (ref.colour, ref.size, ref.cx, ref.cy)
            assert obj.shape != ref.shape
        # Outside every object's footprint in either sibling, the pixels are identical.
        footprint = np.zeros((g.IMAGE_SIZE, g.IMAGE_SIZE), bool)
        for obj in [*scene.objects, *base.objects]:
            footprint |= g.object_mask(obj)
        assert np.array_equal(np.asarray(image)[~footprint], np.asarray(group[0][1])[~footprint])
        mentioned = {t for t in scene.tags["objects"] if t in g.SHAPES}
        assert mentioned == ({o.shape for o in scene.objects} - set(scene.dropped)) | set(
            scene.extra
        )
    again = g.make_sibling_group(5, 11, 3)
    assert [s.caption for s, _ in again] == [s.caption for s, _ in group]


def test_pretrain_pairs_are_group_major_and_worker_independent():
    images, captions = cp.pretrain_pairs(TINY, progress=False)
    assert images.shape == (12, 3, g.IMAGE_SIZE, g.IMAGE_SIZE) and images.dtype == torch.uint8
    assert captions[2:4] == [s.caption for s, _ in g.make_sibling_group(1, 1, 2)]
    images2, captions2 = cp.pretrain_pairs(TINY, workers=2, progress=False)
    assert torch.equal(images, images2) and captions == captions2


def test_batches_hold_whole_sibling_groups():
    batches = cp._batches(TINY, torch.Generator().manual_seed(0))
    for _ in range(5):
        idx = next(batches).tolist()
        assert len(idx) == TINY.batch_size
        assert all(idx[i] // 2 == idx[i + 1] // 2 for i in range(0, len(idx), 2))


def test_recipe_rejects_batches_that_split_groups():
    with pytest.raises(ValueError, match="multiple of siblings"):
        cp.PretrainRecipe(siblings=3, batch_size=64)


def test_weights_load_like_real_ones_are_cached_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(cp, "SHIPPED_DIR", tmp_path / "none")
    weights = cp.toy_clip_weights(tmp_path / "a", TINY, progress=False, threads=1)
    assert weights.name == TINY.filename and weights.suffix == ".safetensors"
    model, preprocess, _ = cp.load_toy_clip(weights)
    saved, loaded = load_file(weights), model.state_dict()
    assert saved.keys() <= loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    fresh = open_clip.create_model(cp.TOY_CLIP_NAME, pretrained=None).state_dict()
    assert not torch.equal(fresh["visual.conv1.weight"], loaded["visual.conv1.weight"])
    assert preprocess.transforms[0].size in (g.IMAGE_SIZE, (g.IMAGE_SIZE, g.IMAGE_SIZE))

    stamp = weights.stat().st_mtime_ns
    assert cp.toy_clip_weights(tmp_path / "a", TINY, progress=False) == weights
    assert weights.stat().st_mtime_ns == stamp  # reused, not retrained
    assert cp.PretrainRecipe(groups=6, siblings=2, steps=4, batch_size=4).filename != TINY.filename

    again = load_file(cp.toy_clip_weights(tmp_path / "b", TINY, progress=False, threads=1))
    assert all(torch.equal(saved[k], again[k]) for k in saved)


def test_shipped_weights_are_used_unless_retraining(tmp_path, monkeypatch):
    monkeypatch.setattr(cp, "SHIPPED_DIR", tmp_path / "shipped")
    cp.save_weights(
        open_clip.create_model(cp.TOY_CLIP_NAME).state_dict(),
        tmp_path / "shipped" / TINY.filename,
        torch.float16,
    )
    assert (
        cp.toy_clip_weights(tmp_path / "cache", TINY, progress=False)
        == tmp_path / "shipped" / TINY.filename
    )
    before = torch.get_num_threads()
    trained = cp.toy_clip_weights(tmp_path / "cache", TINY, retrain=True, progress=False, threads=1)
    assert trained == tmp_path / "cache" / TINY.filename
    assert torch.get_num_threads() == before


def test_shipped_default_weights_know_their_shapes(tmp_path):
    """The packaged toy CLIP is the default recipe's, loads through open_clip, and names a shape
    that is in the image far more often than chance (measured: see bench/RESULTS.md, issue 7)."""
    shipped = cp.shipped_weights(cp.PretrainRecipe())
    assert shipped is not None, f"no shipped weights named {cp.PretrainRecipe().filename}"
    world = g.generate_world(
        tmp_path, g.WorldSpec(seed=0, n_train=1, n_val=120, shard_size=1), progress=False
    )
    model = cp.load_toy_clip(shipped)[0]
    accuracy, chance = cp.zero_shot_shape_accuracy(model, *cp.load_val_images(world))
    assert accuracy >= chance + 0.10, (accuracy, chance)  # measured: 49.2% vs 26.3%
