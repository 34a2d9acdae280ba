"""Sliding-window inference: batching changes nothing, one window is whole-image inference, and the
protocol's head/blend/background rules are applied as documented."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tagalign_eval.datasets.classes import classes_from_option
from tagalign_eval.inference import (
    ClassEmbeddings,
    Segmenter,
    rescale_size,
    window_grid,
)
from tagalign_eval.pamr import pamr
from tagalign_eval.protocols import resolve_protocol

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def text_for(n: int, dim: int = 16, background: bool = True, seed: int = 1) -> ClassEmbeddings:
    g = torch.Generator().manual_seed(seed)
    prompted = n - int(background)
    return ClassEmbeddings(
        embeddings=F.normalize(torch.randn(prompted, dim, generator=g), dim=-1),
        prompt_class=torch.arange(prompted),
        num_classes=n,
        background_index=0 if background else None,
        background_from_protocol=background,
    )


def images(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random(s + (3,)) * 255).astype(np.uint8) for s in [(40, 56), (48, 48), (33, 70)]]


def test_window_grid_matches_mmseg_slide():
    assert window_grid(48, 100, 48, 24) == [
        (0, 48, 0, 48),
        (0, 48, 24, 72),
        (0, 48, 48, 96),
        (0, 48, 52, 100),
    ]
    assert window_grid(30, 20, 48, 24) == [(0, 30, 0, 20)]  # smaller than a crop: one window
    assert rescale_size(375, 500, 448, 2048) == (448, 597)
    assert rescale_size(100, 2000, 448, 2048) == (102, 2048)  # long side caps the scale


def test_batched_windows_equal_one_crop_at_a_time(dense):
    protocol = resolve_protocol("tagalign-v3", "voc", {"short_side": 48, "crop": 32, "stride": 16})
    classes = text_for(5)
    batched = Segmenter(dense, classes, protocol, MEAN, STD, crop_batch=64)
    single = Segmenter(dense, classes, protocol, MEAN, STD, crop_batch=1)
    prepared = [batched.prepare(im) for im in images()]
    many = batched.slide(prepared)
    ones = [single.slide([p])[0] for p in prepared]
    for a, b in zip(many, ones):
        assert torch.allclose(a, b, atol=1e-5)
    assert [t.argmax(0).tolist() for t in many] == [t.argmax(0).tolist() for t in ones]


def test_window_covering_the_image_equals_whole_image_inference(dense):
    protocol = resolve_protocol("tagalign-v1", None, {"short_side": 48, "crop": 512, "stride": 256})
    seg = Segmenter(dense, text_for(4), protocol, MEAN, STD)
    x = seg.prepare(images()[0])
    slid = seg.slide([x])[0]
    whole = seg.crop_probs(x[None])[0]
    assert torch.allclose(slid, whole, atol=1e-6)


def test_heads_blend_and_constant_background():
    """Hand-built embeddings: pixel similarity to class 1 is 1.0, to class 2 is 0.0."""
    text = ClassEmbeddings(
        embeddings=torch.eye(2),
        prompt_class=torch.arange(2),
        num_classes=3,
        background_index=0,
        background_from_protocol=True,
    )
    trained = torch.zeros(1, 2, 1, 2)
    trained[0, 0, 0, 0] = 1.0  # pixel 0 -> class 1
    trained[0, 1, 0, 1] = 1.0  # pixel 1 -> class 2
    baseline = trained.flip(1)  # the CLIP path disagrees everywhere
    fn = lambda x: (trained, baseline)
    v1 = resolve_protocol("tagalign-v1")
    probs = Segmenter(fn, text, v1, MEAN, STD)._head(trained)
    assert probs[0, :, 0, 0].tolist() == pytest.approx(
        [torch.sigmoid(torch.tensor(7.5)).item(), torch.sigmoid(torch.tensor(-2.5)).item()]
    )
    seg = Segmenter(fn, text, v1, MEAN, STD)
    blended = seg.crop_probs(torch.zeros(1, 3, 1, 2))[0, :, 0, 0]
    s_hi, s_lo = torch.sigmoid(torch.tensor(7.5)).item(), torch.sigmoid(torch.tensor(-2.5)).item()
    assert blended.tolist() == pytest.approx([0.7 * s_hi + 0.3 * s_lo, 0.7 * s_lo + 0.3 * s_hi])
    # background wins where the best class score is at or below the constant
    probs = torch.tensor([[[0.2, 0.6]], [[0.3, 0.1]]])
    v3 = resolve_protocol("tagalign-v3", None, {"bg_thresh": 0.3})
    assert Segmenter(fn, text, v3, MEAN, STD).labels(probs, (1, 2)).tolist() == [[0, 1]]
    sclip = resolve_protocol("sclip", None, {"bg_thresh": 0.3})
    assert Segmenter(fn, text, sclip, MEAN, STD).labels(probs, (1, 2)).tolist() == [[2, 1]]


def test_synonyms_take_the_best_name_per_class():
    classes = classes_from_option("background,cat;kitty,dog")
    text = ClassEmbeddings(
        embeddings=torch.eye(3),
        prompt_class=torch.tensor([0, 0, 1]),
        num_classes=3,
        background_index=0,
        background_from_protocol=True,
    )
    assert classes.prompted == [(1, "cat"), (1, "kitty"), (2, "dog")]
    feats = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)  # looks like "kitty"
    p = resolve_protocol("tagalign-v3")
    probs = Segmenter(lambda x: (feats, None), text, p, MEAN, STD)._head(feats)
    soft = torch.softmax(30 * torch.tensor([0.0, 1.0, 0.0]), 0)
    assert probs.flatten().tolist() == pytest.approx([soft[1].item(), soft[2].item()])


def test_pamr_smooths_within_flat_regions_and_keeps_shape():
    image = torch.zeros(1, 3, 12, 12)
    image[..., 6:] = 1.0  # two flat halves
    scores = torch.rand(1, 2, 12, 12, generator=torch.Generator().manual_seed(0))
    out = pamr(image, scores, iterations=5, dilations=(1, 2))
    assert out.shape == scores.shape
    assert out[..., :6].std() < scores[..., :6].std()
    # each step is a convex combination of neighbours: values stay inside the input range
    assert out.min() >= scores.min() - 1e-6 and out.max() <= scores.max() + 1e-6
