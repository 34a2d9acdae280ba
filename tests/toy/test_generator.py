"""ToyShapes generator: byte-level determinism, the on-disk layouts, and masks vs caption tags.

The caption/mask relationship under test (the generator's documented noise model), per sample:
- the shape classes in the shape mask are exactly the scene's shapes, and the attribute mask's
  classes are exactly its colour-shape pairs, pixel-for-pixel consistent with the shape mask;
- every object keeps >= MIN_VISIBLE of its own pixels after later objects are drawn over it;
- the caption's ground-truth shape tags == (mask shapes - dropped) | extra, where `dropped` are
  real shapes the caption leaves out and `extra` is a shape absent from the image;
- every ground-truth tag is written in the caption (as its canonical word or a listed synonym);
- without an extra object, every attribute tag is the colour or size of an object in the image.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tagalign_toy import captions as captioning
from tagalign_toy import generator as g
from tagalign_toy import render as rendering
from tagalign_toy import scene as scenes

SMALL = g.WorldSpec(seed=3, n_train=40, n_val=8, shard_size=16, n_single=36, n_pairs=6)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return g.generate_world(tmp_path_factory.mktemp("a"), SMALL, progress=False)


def test_same_seed_same_bytes_also_with_worker_processes(world, tmp_path):
    again = g.generate_world(tmp_path / "b", SMALL, workers=2, progress=False)
    assert _digests(world) == _digests(again)
    other = g.generate_world(tmp_path / "c", replace(SMALL, seed=4), progress=False)
    assert _digests(other)["train/00000.tar"] != _digests(world)["train/00000.tar"]


def test_sample_does_not_depend_on_world_size():
    a = g.make_sample(1, "train", 7)
    b = g.make_sample(1, "train", 7)
    assert a[0].caption == b[0].caption
    assert g.jpeg_bytes(a[1]) == g.jpeg_bytes(b[1])
    assert g.make_sample(1, "val", 7)[0].caption != a[0].caption or g.jpeg_bytes(
        g.make_sample(1, "val", 7)[1]
    ) != g.jpeg_bytes(a[1])


def test_train_shards_are_img2dataset_style(world):
    shards = sorted((world / "train").glob("*.tar"))
    assert [s.name for s in shards] == ["00000.tar", "00001.tar", "00002.tar"]
    names = []
    for shard in shards:
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                assert (member.mtime, member.uid, member.gid, member.uname) == (0, 0, 0, "")
                names.append(member.name)
    keys = sorted({n.rsplit(".", 1)[0] for n in names})
    assert len(keys) == 40 and sorted(names) == sorted(
        [f"{k}.jpg" for k in keys] + [f"{k}.txt" for k in keys]
    )
    gold = [json.loads(line) for line in (world / "train" / "gold.jsonl").read_text().splitlines()]
    assert [r["key"] for r in gold] == keys
    with tarfile.open(shards[0]) as tar:
        caption = tar.extractfile(f"{keys[0]}.txt").read().decode()
        image = Image.open(tar.extractfile(f"{keys[0]}.jpg"))
        assert image.size == (scenes.IMAGE_SIZE, scenes.IMAGE_SIZE) and image.mode == "RGB"
        assert not image.info.get("exif")
    assert caption == gold[0]["caption"]


def test_val_is_voc_layout_with_two_class_lists(world):
    base = world / "VOCdevkit" / "ToyShapes"
    keys = (base / "ImageSets/Segmentation/val.txt").read_text().split()
    assert len(keys) == 8
    assert (base / "shapes.txt").read_text().split("\n")[:-1] == scenes.shape_classes()
    assert (base / "attribute_shapes.txt").read_text().split("\n")[
        :-1
    ] == scenes.attribute_classes()
    assert len(scenes.shape_classes()) == 7 and len(scenes.attribute_classes()) == 37
    for key in keys:
        image = Image.open(base / "JPEGImages" / f"{key}.jpg")
        for folder, n_classes in ((g.SHAPE_MASK_DIR, 7), (g.ATTR_MASK_DIR, 37)):
            mask = Image.open(base / folder / f"{key}.png")
            assert mask.mode == "P" and mask.size == image.size
            assert mask.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]  # VOC colours
            assert np.asarray(mask).max() < n_classes


def _visible_fractions(scene: scenes.Scene) -> list[float]:
    masks = [rendering.object_mask(o) for o in scene.objects]
    fractions = []
    for k, m in enumerate(masks):
        later = np.zeros_like(m)
        for other in masks[k + 1 :]:
            later |= other
        fractions.append((m & ~later).sum() / m.sum())
    return fractions


def _written(tag: str, caption: str) -> bool:
    words = {
        tag,
        *captioning.SHAPE_SYNONYMS.get(tag, []),
        *captioning.COLOUR_SYNONYMS.get(tag, []),
        *captioning.SIZE_WORDS.get(tag, []),
    }
    return any(w in caption.lower() for w in words)


def test_masks_agree_with_caption_tags():
    shape_names, attr_names = scenes.shape_classes(), scenes.attribute_classes()
    counts = {"dropped": 0, "extra": 0, "synonym": 0}
    for i in range(300):
        scene, _, shape_mask, attr_mask = g.make_sample(11, "train", i)
        in_mask = {shape_names[v] for v in np.unique(shape_mask) if v}
        assert in_mask == {o.shape for o in scene.objects}
        assert {attr_names[v] for v in np.unique(attr_mask) if v} == {
            o.attr_class for o in scene.objects
        }
        shape_of_attr = np.array([0] + [shape_names.index(n.split()[1]) for n in attr_names[1:]])
        assert np.array_equal(shape_of_attr[attr_mask], shape_mask)
        assert min(_visible_fractions(scene)) >= scenes.MIN_VISIBLE

        tagged_shapes = set(scene.tags["objects"]) - set(scenes.BACKGROUNDS)
        assert tagged_shapes == (in_mask - set(scene.dropped)) | set(scene.extra)
        assert set(scene.dropped) <= in_mask and not set(scene.extra) & in_mask
        assert set(scene.tags["objects"]) & set(scenes.BACKGROUNDS) <= {scene.background}
        for tag in scene.tags["objects"] + scene.tags["attributes"]:
            assert _written(tag, scene.caption), (tag, scene.caption)
        if not scene.extra:
            present = {o.colour for o in scene.objects} | {o.size for o in scene.objects}
            assert set(scene.tags["attributes"]) <= present
        counts["dropped"] += bool(scene.dropped)
        counts["extra"] += bool(scene.extra)
        counts["synonym"] += any(
            s in scene.caption for v in captioning.SHAPE_SYNONYMS.values() for s in v
        )
    # The alt-text noise is really there, at modest rates.
    assert 3 <= counts["dropped"] <= 45 and 8 <= counts["extra"] <= 45 and counts["synonym"] >= 20


def test_objects_stand_upright(world):
    for i in range(200):
        for obj in g.make_sample(2, "train", i)[0].objects:
            assert abs(obj.angle - scenes.UPRIGHT[obj.shape]) <= scenes.TILT


def test_single_split_is_an_image_folder_balanced_over_colour_and_shape(world):
    base = world / g.SINGLE_DIR
    records = [json.loads(line) for line in (base / "gold.jsonl").read_text().splitlines()]
    assert len(records) == 36
    assert {(r["colour"], r["shape"]) for r in records} == {
        (c, s) for c in scenes.COLOURS for s in scenes.SHAPES
    }
    assert sorted(p.name for p in base.iterdir() if p.is_dir()) == sorted(scenes.SHAPES)
    shape_names = scenes.shape_classes()
    for r in records:
        assert r["image"] == f"{r['shape']}/{r['key']}.jpg"
        obj, background, image = g.make_single_sample(3, int(r["key"][len("single") :]))
        assert (obj.shape, obj.colour, background) == (r["shape"], r["colour"], r["background"])
        assert (base / r["image"]).read_bytes() == g.jpeg_bytes(image)
        scene = scenes.Scene("k", background, [obj])
        shapes_in_mask = {
            shape_names[v]
            for v in np.unique(rendering.render(scene, np.random.default_rng(0))[1])
            if v
        }
        assert shapes_in_mask == {r["shape"]}


def test_pairs_split_holds_one_shape_in_two_colours(world):
    base = world / "VOCdevkit" / g.PAIRS_VOC_NAME
    keys = (base / "ImageSets/Segmentation/val.txt").read_text().split()
    assert keys == [f"pairs{i:07d}" for i in range(6)]
    names = scenes.attribute_classes()
    for i, key in enumerate(keys):
        mask = np.asarray(Image.open(base / g.ATTR_MASK_DIR / f"{key}.png"))
        scene, _, attr_mask = g.make_pair_sample(3, i)
        assert np.array_equal(mask, attr_mask)
        a, b = scene.objects
        assert a.shape == b.shape and a.colour != b.colour
        # Each object keeps at least MIN_VISIBLE of its pixels under the other.
        for obj, fraction in zip(scene.objects, _visible_fractions(scene), strict=True):
            assert fraction >= scenes.MIN_VISIBLE
            assert names.index(obj.attr_class) in np.unique(mask)


def test_val_captions_file_pairs_each_image_with_its_caption(world):
    base = world / "VOCdevkit" / g.VOC_NAME
    pairs = [json.loads(line) for line in (base / g.CAPTIONS_FILE).read_text().splitlines()]
    gold = [json.loads(line) for line in (base / "gold.jsonl").read_text().splitlines()]
    assert [p["image"] for p in pairs] == [f"JPEGImages/{r['key']}.jpg" for r in gold]
    assert [p["caption"] for p in pairs] == [r["caption"] for r in gold]
    assert all((base / p["image"]).is_file() for p in pairs)


def test_pretrain_captions_describe_every_object():
    objects = [
        scenes.ShapeObject("circle", "red", "big", 30, 30, 20, 0),
        scenes.ShapeObject("star", "blue", "small", 70, 70, 10, 0),
        scenes.ShapeObject("cross", "white", "small", 20, 70, 10, 0),
    ]
    scene = scenes.Scene("k", "sky", objects)
    assert captioning.describe(scene) == (
        "a big red circle, a small blue star and a small white cross in the sky"
    )
    assert (
        captioning.describe(scenes.Scene("k", "grass", objects[:1]))
        == "a big red circle on the grass"
    )
    single = re.compile(
        rf"^a ({'|'.join(scenes.SIZES)}) ({'|'.join(scenes.COLOURS)}) ({'|'.join(scenes.SHAPES)}) "
        rf"({'|'.join(p[0] for p in captioning.BACKGROUND_PHRASES.values())})$"
    )
    for i in range(0, 20, 2):  # even indices are single objects
        group = g.make_pretrain_group(0, i)
        assert all(single.match(caption) for caption, _ in group), group
        again = g.make_pretrain_group(0, i)
        assert [g.jpeg_bytes(im) for _, im in group] == [g.jpeg_bytes(im) for _, im in again]
    multi = [g.make_pretrain_group(0, i)[0][0] for i in range(1, 40, 2)]
    assert any(" and " in c for c in multi)
