"""Each loss against values computed by hand (plain Python math) on 3 samples × 5 tags."""

from __future__ import annotations

import math

import pytest
import torch
from tagalign_train.errors import TrainError
from tagalign_train.losses import ContrastiveLoss, TagAlignLoss, TagLoss

S = 1 / 0.07  # both temperatures start at 1/0.07
# Tags are the 5 unit vectors, so cos(image, tag k) is the k-th component of the unit image vector.
IMAGES = [[3.0, 4.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0]]
TARGETS = [[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]  # the 3rd sample has no tag
TEXTS = [[3.0, 4.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]]


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def logits(scale=S):
    return [[scale * c for c in unit(v)] for v in IMAGES]


def log_softmax(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def soft_ce(rows, targets):
    total = 0.0
    for row, t in zip(rows, targets):
        if sum(t):
            total -= sum(ti / sum(t) * lp for ti, lp in zip(t, log_softmax(row)))
    return total / len(rows)


def tensors():
    return (torch.tensor(IMAGES), torch.eye(5), torch.tensor(TARGETS, dtype=torch.float32))


def test_softmax_tag_loss():
    img, tags, targets = tensors()
    assert TagLoss("softmax")(img, tags, targets).item() == pytest.approx(
        soft_ce(logits(), TARGETS), rel=1e-5
    )


def test_per_kind_softmax_is_one_softmax_per_group():
    img, tags, targets = tensors()
    loss = TagLoss("softmax", groups=[slice(0, 3), slice(3, 5)])(img, tags, targets).item()
    lg = logits()
    expected = soft_ce([r[:3] for r in lg], [t[:3] for t in TARGETS]) + soft_ce(
        [r[3:] for r in lg], [t[3:] for t in TARGETS]
    )
    assert loss == pytest.approx(expected, rel=1e-5)


def soft_ce_part(rows, targets, cols):
    """One kind's part of the joint soft-target CE: its tags' terms, normalised over all tags."""
    total = 0.0
    for row, t in zip(rows, targets):
        if sum(t):
            lp = log_softmax(row)
            total -= sum(t[k] / sum(t) * lp[k] for k in cols)
    return total / len(rows)


KINDS = {"object": slice(0, 3), "attribute": slice(3, 5)}
TARGETS_BOTH = [[1, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 1]]


def test_joint_softmax_splits_into_kind_parts_and_weights_the_attribute_part():
    img, tags = torch.tensor(IMAGES), torch.eye(5)
    targets = torch.tensor(TARGETS_BOTH, dtype=torch.float32)
    parts = TagLoss("softmax", kinds=KINDS).kind_terms(img, tags, targets)
    objects = soft_ce_part(logits(), TARGETS_BOTH, range(3))
    attributes = soft_ce_part(logits(), TARGETS_BOTH, range(3, 5))
    assert parts["object"].item() == pytest.approx(objects, rel=1e-5)
    assert parts["attribute"].item() == pytest.approx(attributes, rel=1e-5)
    assert objects + attributes == pytest.approx(soft_ce(logits(), TARGETS_BOTH), rel=1e-6)
    weighted = TagLoss("softmax", kinds=KINDS, kind_weights={"attribute": 4.0})
    assert weighted(img, tags, targets).item() == pytest.approx(objects + 4 * attributes, rel=1e-5)
    terms = TagAlignLoss(weighted, 1.0, 0.0)(img, tags, targets, None)
    assert set(terms) == {"tag", "tag_object", "tag_attribute", "loss"}
    assert terms["tag_attribute"].item() == pytest.approx(attributes, rel=1e-5)


def test_balanced_softmax_adds_log_prior():
    img, tags, targets = tensors()
    prior = [0.4, 0.3, 0.15, 0.1, 0.05]
    loss = TagLoss("balanced", log_prior=torch.tensor([math.log(p) for p in prior]))(
        img, tags, targets
    )
    adjusted = [[x + math.log(p) for x, p in zip(row, prior)] for row in logits()]
    assert loss.item() == pytest.approx(soft_ce(adjusted, TARGETS), rel=1e-5)


def test_bce_tag_loss():
    img, tags, targets = tensors()
    total = 0.0
    for row, t in zip(logits(), TARGETS):
        for x, y in zip(row, t):
            p = 1 / (1 + math.exp(-x))
            total -= y * math.log(p) + (1 - y) * math.log(1 - p)
    assert TagLoss("bce")(img, tags, targets).item() == pytest.approx(total / 3, rel=1e-5)


def test_asymmetric_tag_loss():
    img, tags, targets = tensors()
    total = 0.0
    for row, t in zip(logits(), TARGETS):
        for x, y in zip(row, t):
            p = 1 / (1 + math.exp(-x))
            pm = max(p - 0.05, 0.0)
            total -= y * math.log(max(p, 1e-8)) + (1 - y) * math.log(max(1 - pm, 1e-8)) * pm**4
    assert TagLoss("asymmetric")(img, tags, targets).item() == pytest.approx(total / 3, rel=1e-5)


def test_contrastive_loss_is_symmetric_infonce():
    sim = [[S * sum(a * b for a, b in zip(unit(i), unit(t))) for t in TEXTS] for i in IMAGES]
    img_to_txt = -sum(log_softmax(sim[i])[i] for i in range(3)) / 3
    txt_to_img = -sum(log_softmax([sim[j][i] for j in range(3)])[i] for i in range(3)) / 3
    loss = ContrastiveLoss()(torch.tensor(IMAGES), torch.tensor(TEXTS))
    assert loss.item() == pytest.approx(0.5 * (img_to_txt + txt_to_img), rel=1e-5)


def test_weights_and_zero_itc_keeps_tag_loss():
    img, tags, targets = tensors()
    texts = torch.tensor(TEXTS)
    both = TagAlignLoss(TagLoss(), 2.0, 0.5)(img, tags, targets, texts)
    assert both["loss"].item() == pytest.approx(
        2.0 * both["tag"].item() + 0.5 * both["itc"].item(), rel=1e-6
    )
    tag_only = TagAlignLoss(TagLoss(), 1.0, 0.0)(img, tags, targets, None)
    assert set(tag_only) == {"tag", "loss"}
    assert tag_only["loss"].item() == pytest.approx(soft_ce(logits(), TARGETS), rel=1e-5)
    with pytest.raises(TrainError):
        TagAlignLoss(TagLoss(), 0.0, 0.0)


def test_temperatures_are_separate_learnable_and_capped():
    loss = TagAlignLoss(TagLoss())
    assert loss.tag.scale.log_scale is not loss.itc.scale.log_scale
    assert loss.tag.scale().item() == pytest.approx(S, rel=1e-6)
    with torch.no_grad():
        loss.itc.scale.log_scale.fill_(10.0)
    assert loss.itc.scale().item() == 100.0
    img, tags, targets = tensors()
    loss(img.requires_grad_(), tags, targets, torch.tensor(TEXTS))["loss"].backward()
    assert loss.tag.scale.log_scale.grad is not None and loss.itc.scale.log_scale.grad is not None
