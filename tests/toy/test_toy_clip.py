"""The toy CLIP: trained on the generator's sibling groups, saved as an open_clip `local-dir:`
folder, reloaded through `open_clip.create_model_and_transforms("local-dir:DIR")`, cached by its
recipe, and shipped (fp16) for the default recipe."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import load_file
from tagalign_toy import generator as g
from tagalign_toy import pretrain as pt
from tagalign_toy import toy_clip as tc
from tagalign_toy import zero_shot as zs

TINY = tc.PretrainRecipe(groups=6, siblings=2, steps=3, batch_size=4, warmup=1, seed=1)


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
    images, captions = pt.pretrain_pairs(TINY, progress=False)
    assert images.shape == (12, 3, g.IMAGE_SIZE, g.IMAGE_SIZE) and images.dtype == torch.uint8
    assert captions[2:4] == [s.caption for s, _ in g.make_sibling_group(1, 1, 2)]
    images2, captions2 = pt.pretrain_pairs(TINY, workers=2, progress=False)
    assert torch.equal(images, images2) and captions == captions2


def test_batches_hold_whole_sibling_groups():
    batches = pt.sibling_batches(TINY, torch.Generator().manual_seed(0))
    for _ in range(5):
        idx = next(batches).tolist()
        assert len(idx) == TINY.batch_size
        assert all(idx[i] // 2 == idx[i + 1] // 2 for i in range(0, len(idx), 2))


def test_recipe_rejects_batches_that_split_groups():
    with pytest.raises(ValueError, match="multiple of siblings"):
        tc.PretrainRecipe(siblings=3, batch_size=64)


def test_weights_load_like_real_ones_are_cached_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(tc, "SHIPPED_DIR", tmp_path / "none")
    weights = pt.toy_clip_weights(tmp_path / "a", TINY, progress=False, threads=1)
    assert weights.name == TINY.dirname
    assert sorted(p.name for p in weights.iterdir()) == [tc.LOCAL_CONFIG_FILE, tc.WEIGHTS_FILE]
    assert tc.model_spec(weights) == f"local-dir:{weights.resolve()}"
    model, preprocess, tokenizer = tc.load_toy_clip(weights)
    saved, loaded = load_file(weights / tc.WEIGHTS_FILE), model.state_dict()
    assert saved.keys() <= loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    tc.register_toy_clip()
    fresh = open_clip.create_model(tc.TOY_CLIP_NAME, pretrained=None).state_dict()
    assert not torch.equal(fresh["visual.conv1.weight"], loaded["visual.conv1.weight"])
    assert preprocess.transforms[0].size in (g.IMAGE_SIZE, (g.IMAGE_SIZE, g.IMAGE_SIZE))
    assert tokenizer(["a red circle"]).shape == (
        1,
        tc.toy_clip_config()["text_cfg"]["context_length"],
    )

    stamp = (weights / tc.WEIGHTS_FILE).stat().st_mtime_ns
    assert pt.toy_clip_weights(tmp_path / "a", TINY, progress=False) == weights
    assert (weights / tc.WEIGHTS_FILE).stat().st_mtime_ns == stamp  # reused, not retrained
    assert tc.PretrainRecipe(groups=6, siblings=2, steps=4, batch_size=4).dirname != TINY.dirname

    again = pt.toy_clip_weights(tmp_path / "b", TINY, progress=False, threads=1)
    again_state = load_file(again / tc.WEIGHTS_FILE)
    assert all(torch.equal(saved[k], again_state[k]) for k in saved)


def test_saving_over_an_existing_folder_replaces_it(tmp_path):
    tc.register_toy_clip()
    out = tmp_path / "clip"
    tc.save_toy_clip(open_clip.create_model(tc.TOY_CLIP_NAME).state_dict(), out)
    (out / "stray.txt").write_text("old")
    tc.save_toy_clip(open_clip.create_model(tc.TOY_CLIP_NAME).state_dict(), out, torch.float16)
    assert sorted(p.name for p in out.iterdir()) == [tc.LOCAL_CONFIG_FILE, tc.WEIGHTS_FILE]
    assert load_file(out / tc.WEIGHTS_FILE)["visual.conv1.weight"].dtype == torch.float16
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]  # no temporaries left behind


def test_shipped_weights_are_used_unless_retraining(tmp_path, monkeypatch):
    monkeypatch.setattr(tc, "SHIPPED_DIR", tmp_path / "shipped")
    tc.register_toy_clip()
    tc.save_toy_clip(
        open_clip.create_model(tc.TOY_CLIP_NAME).state_dict(),
        tmp_path / "shipped" / TINY.dirname,
        torch.float16,
    )
    assert (
        pt.toy_clip_weights(tmp_path / "cache", TINY, progress=False)
        == tmp_path / "shipped" / TINY.dirname
    )
    before = torch.get_num_threads()
    trained = pt.toy_clip_weights(tmp_path / "cache", TINY, retrain=True, progress=False, threads=1)
    assert trained == tmp_path / "cache" / TINY.dirname
    assert torch.get_num_threads() == before


def test_shipped_default_weights_know_their_shapes(tmp_path):
    """The packaged toy CLIP is the default recipe's, loads through open_clip, and names a shape
    that is in the image far more often than chance (measured: see bench/RESULTS.md, issue 7)."""
    shipped = tc.shipped_weights(tc.DEFAULT_RECIPE)
    assert shipped is not None, f"no shipped weights named {tc.DEFAULT_RECIPE.dirname}"
    assert shipped.name == "toy-clip-6526e4eb40a1"  # the digest did not move with the package
    world = g.generate_world(
        tmp_path, g.WorldSpec(seed=0, n_train=1, n_val=120, shard_size=1), progress=False
    )
    model, _, tokenizer = tc.load_toy_clip(shipped)
    accuracy, chance = zs.zero_shot_shape_accuracy(model, tokenizer, *zs.load_val_images(world))
    assert accuracy >= chance + 0.10, (accuracy, chance)  # measured: 49.2% vs 26.3%
