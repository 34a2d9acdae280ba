"""The toy benchmarks are found by the evaluator's registry (through the installed entry point) and
read a generated world's VOC layout with the generator's class lists."""

from __future__ import annotations

import numpy as np
import pytest
from tagalign_eval.datasets import get_benchmark, open_benchmark
from tagalign_toy import generator as g
from tagalign_toy import scene as scenes


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    spec = g.WorldSpec(seed=5, n_train=8, n_val=6, shard_size=8, n_single=6, n_pairs=6)
    return g.generate_world(tmp_path_factory.mktemp("w"), spec, progress=False)


@pytest.mark.parametrize(
    "name, names, mask_dir",
    [
        ("toyshapes", scenes.shape_classes(), g.SHAPE_MASK_DIR),
        ("toyshapes-attr", scenes.attribute_classes(), g.ATTR_MASK_DIR),
    ],
)
def test_benchmark_reads_the_generated_val_split(world, name, names, mask_dir):
    spec = get_benchmark(name)
    dataset = open_benchmark(spec, world)
    assert dataset.classes.names == names
    assert dataset.classes.synonyms[0] == ("background", *scenes.BACKGROUNDS)
    assert len(dataset) == 6
    for i, sample in enumerate(dataset):
        assert sample.stem == f"val{i:07d}"
        _, _, shape_mask, attr_mask = g.make_sample(5, "val", i)
        expected = shape_mask if mask_dir == g.SHAPE_MASK_DIR else attr_mask
        assert np.array_equal(sample.mask, expected)
        assert sample.image.shape == (scenes.IMAGE_SIZE, scenes.IMAGE_SIZE, 3)


def test_pairs_benchmark_reads_one_shape_in_two_colours(world):
    dataset = open_benchmark(get_benchmark("toyshapes-pairs"), world)
    assert dataset.classes.names == scenes.attribute_classes()
    assert len(dataset) == 6
    names = scenes.attribute_classes()
    for i, sample in enumerate(dataset):
        scene, _, attr_mask = g.make_pair_sample(5, i)
        assert sample.stem == f"pairs{i:07d}"
        assert np.array_equal(sample.mask, attr_mask)
        present = {names[v] for v in np.unique(sample.mask) if v}
        a, b = scene.objects
        assert a.shape == b.shape and a.colour != b.colour
        assert present == {a.attr_class, b.attr_class}
