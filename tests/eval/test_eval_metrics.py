"""mIoU against hand-computed values, with ignore pixels, absent classes and reduce_zero_label."""

import math

import numpy as np
import pytest
import torch
from eval_synthetic import write_image, write_mask
from tagalign_eval.datasets import BenchmarkSpec, SegDataset
from tagalign_eval.metrics import IGNORE, ClassMetrics, ConfusionMatrix, summarize


def test_hand_computed_iou_with_ignore_pixels():
    gt = torch.tensor([[0, 0, 1, 1], [2, 2, IGNORE, IGNORE]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 0]])
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    m = summarize(cm.matrix)
    # class 0: I=1, U=2+2-1=3; class 1: I=2, U=2+3-2=3; class 2: I=1, U=2+1-1=2
    assert m.iou == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert m.miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m.aacc == pytest.approx(4 / 6)
    assert m.acc == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert m.pixels == 6


def test_absent_class_is_nan_and_left_out_but_false_positive_counts_zero():
    # class 2 never appears (NaN, excluded); class 3 absent from GT but predicted (IoU 0).
    gt = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 3, 1, 1])
    cm = ConfusionMatrix(4)
    cm.update(pred, gt)
    m = summarize(cm.matrix)
    assert math.isnan(m.iou[2]) and math.isnan(m.acc[2])
    assert m.iou[3] == 0.0 and math.isnan(m.acc[3])
    assert m.iou[0] == pytest.approx(1 / 2) and m.iou[1] == 1.0
    assert m.miou == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    reported = m.report(["a", "b", "c", "d"])
    assert reported.per_class[2] == ClassMetrics("c", None, None)
    assert reported.miou == pytest.approx(50.0) and reported.per_class[1].iou == 100.0
    d = reported.to_dict()
    assert d["per_class"]["c"] == {"IoU": None, "Acc": None} and d["mIoU"] == reported.miou


def test_out_of_range_labels_are_reported_not_counted():
    gt = torch.tensor([0, 1, 7, 7, IGNORE])
    pred = torch.tensor([0, 1, 0, 1, 1])
    cm = ConfusionMatrix(2)
    assert cm.update(pred, gt) == {7: 2}
    assert int(cm.matrix.sum()) == 2 and cm.out_of_range == {7: 2}
    assert summarize(cm.matrix).miou == 1.0


def test_accumulates_over_images_like_one_big_image():
    rng = np.random.default_rng(0)
    gts = [torch.from_numpy(rng.integers(-1, 5, (7, 9))) for _ in range(3)]
    preds = [torch.from_numpy(rng.integers(0, 5, (7, 9))) for _ in range(3)]
    many, one = ConfusionMatrix(5), ConfusionMatrix(5)
    for p, g in zip(preds, gts):
        many.update(p, g)
    one.update(torch.cat([p.flatten() for p in preds]), torch.cat([g.flatten() for g in gts]))
    assert torch.equal(many.matrix, one.matrix)


def test_reduce_zero_label_through_the_loader(tmp_path):
    """File 0 becomes ignore, v becomes v-1, 255 stays ignore; the metric sees only 2 classes."""
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\n")
    spec = BenchmarkSpec(
        name="rz",
        root="set",
        img_dir="img",
        ann_dir="ann",
        classes=str(classes),
        reduce_zero_label=True,
    )
    raw = np.array([[0, 1, 1, 2], [2, 2, 255, 0]])
    write_image(tmp_path / "set/img/a.jpg", np.zeros((2, 4, 3), np.uint8))
    write_mask(tmp_path / "set/ann/a.png", raw, spec)
    sample = SegDataset(spec, tmp_path)[0]
    assert sample.mask.tolist() == [[IGNORE, 0, 0, 1], [1, 1, IGNORE, IGNORE]]
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[1, 0, 1, 1], [1, 0, 0, 0]]), torch.from_numpy(sample.mask))
    m = summarize(cm.matrix)
    # cat: gt 2 px, pred on them 0,1 -> I=1; pred cat elsewhere (valid) 1 -> U=2+2-1=3
    assert m.iou == pytest.approx([1 / 3, 2 / 4])
