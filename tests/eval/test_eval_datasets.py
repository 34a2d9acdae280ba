"""Every builtin benchmark read back from synthetic files in its own on-disk layout."""

import numpy as np
import pytest
from eval_synthetic import write_benchmark, write_mask
from tagalign_eval.datasets import (
    PAPER_ORDER,
    BenchmarkSpec,
    benchmark_names,
    classes_from_option,
    get_benchmark,
    open_benchmark,
    register_benchmark,
)
from tagalign_eval.errors import EvalError
from tagalign_eval.labels import IGNORE

EXPECTED_CLASSES = {
    "voc": 21,
    "context": 60,
    "coco-object": 81,
    "voc20": 20,
    "context59": 59,
    "coco-stuff": 171,
    "cityscapes": 19,
    "ade20k": 150,
    "imagenet-s50": 51,
    "imagenet-s300": 301,
}
REDUCE_ZERO = {"voc20", "context59", "ade20k"}


@pytest.mark.parametrize("name", PAPER_ORDER)
def test_loader_reads_each_layout_back(tmp_path, name):
    spec = get_benchmark(name)
    written = write_benchmark(spec, tmp_path, n=3)
    ds = open_benchmark(spec, tmp_path)
    assert len(ds) == 3 and ds.num_classes == EXPECTED_CLASSES[name]
    assert spec.reduce_zero_label == (name in REDUCE_ZERO)
    for i, stem in enumerate(ds.stems):
        sample = ds[i]
        raw = written[stem]
        assert sample.image.shape == (30, 40, 3) and sample.image.dtype == np.uint8
        ignore = raw == spec.ignore_index
        if spec.reduce_zero_label:
            ignore |= raw == 0
        assert (sample.mask == IGNORE).tolist() == ignore.tolist()
        offset = 1 if spec.reduce_zero_label else 0
        assert sample.mask[~ignore].tolist() == (raw[~ignore] - offset).tolist()
        assert sample.mask.max() < ds.num_classes


def test_background_classes_and_names():
    assert get_benchmark("voc").class_list().names[:2] == ["background", "aeroplane"]
    assert get_benchmark("voc").class_list().background_from_protocol
    assert not get_benchmark("voc20").class_list().background_from_protocol
    assert get_benchmark("coco-object").class_list().names[1] == "person"
    assert get_benchmark("ade20k").class_list().names[:3] == ["wall", "building", "sky"]


def test_synonym_lists_score_each_name_for_one_class(tmp_path):
    classes = classes_from_option("background; sky; wall,cat,person; person in shirt")
    assert classes.names == ["background", "cat", "person"]
    assert not classes.background_from_protocol
    assert classes.prompted == [
        (0, "background"),
        (0, "sky"),
        (0, "wall"),
        (1, "cat"),
        (2, "person"),
        (2, "person in shirt"),
    ]
    f = tmp_path / "c.txt"
    f.write_text("background\ncat\n\n")
    assert classes_from_option(str(f)).background_from_protocol


def test_empty_class_list_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(EvalError, match="empty class list"):
        classes_from_option(str(tmp_path / "empty.txt"))
    with pytest.raises(EvalError, match="empty class list"):
        classes_from_option(" , ")


def test_wrong_data_root_names_folders_and_prepare_command(tmp_path):
    with pytest.raises(EvalError) as err:
        open_benchmark(get_benchmark("coco-object"), tmp_path)
    msg = str(err.value)
    assert "coco_stuff164k/images/val2017" in msg and "prepare coco-object" in msg
    assert "\n" not in msg


def test_missing_split_list(tmp_path):
    spec = get_benchmark("voc")
    write_benchmark(spec, tmp_path, n=2)
    (tmp_path / spec.root / spec.split).unlink()
    with pytest.raises(EvalError, match="split list .*val.txt is missing"):
        open_benchmark(spec, tmp_path)


def test_images_without_masks_listed_and_counted(tmp_path):
    spec = get_benchmark("ade20k")
    write_benchmark(spec, tmp_path, n=6)
    for p in sorted((tmp_path / spec.root / spec.ann_dir).glob("*.png"))[:5]:
        p.unlink()
    with pytest.raises(EvalError, match=r"5 image\(s\) without a mask.*and 2 more"):
        open_benchmark(spec, tmp_path)


def test_masks_without_images(tmp_path):
    spec = get_benchmark("cityscapes")
    write_benchmark(spec, tmp_path, n=2)
    next((tmp_path / spec.root / spec.img_dir).rglob("*.png")).unlink()
    with pytest.raises(EvalError, match=r"1 mask\(s\) without an image"):
        open_benchmark(spec, tmp_path)


def test_out_of_range_labels_fail_or_are_passed_through(tmp_path):
    spec = get_benchmark("voc")
    write_benchmark(spec, tmp_path, n=1)
    four = tmp_path / "four.txt"
    four.write_text("background\na\nb\nc\n")
    with pytest.raises(EvalError, match="has 4 names but benchmark 'voc' has 21 classes"):
        open_benchmark(spec, tmp_path, classes_from_option(str(four)))
    ds = open_benchmark(spec, tmp_path)
    write_mask(ds.mask_path(ds.stems[0]), np.full((30, 40), 30), spec)  # 30: not a VOC class
    with pytest.raises(EvalError, match="label value.s. 30 outside the 21 classes"):
        ds[0]
    loose = open_benchmark(spec, tmp_path, classes_from_option(str(four)), strict_labels=False)
    assert loose[0].mask.max() >= 4  # kept, so the metric reports them instead of counting them


def test_register_benchmark_for_a_new_world(tmp_path):
    classes = tmp_path / "toy.txt"
    classes.write_text("background\ncircle\nsquare\n")
    spec = BenchmarkSpec(
        name="toy-test",
        root="VOCdevkit/TOY",
        img_dir="JPEGImages",
        ann_dir="SegmentationClass",
        split="ImageSets/Segmentation/val.txt",
        classes=str(classes),
        family="voc",
    )
    register_benchmark("toy-test", spec, replace=True)
    assert "toy-test" in benchmark_names()
    write_benchmark(spec, tmp_path, n=2)
    assert len(open_benchmark(get_benchmark("toy-test"), tmp_path)) == 2
    with pytest.raises(ValueError):
        register_benchmark("toy-test", spec)
