"""`predict_images` prompts free-text classes as benchmarks are prompted, and says in one warning
line which per-benchmark prompt settings of a preset it cannot apply to them."""

import numpy as np
import pytest
from eval_small_model import small_eval_model
from PIL import Image
from tagalign_eval.datasets.classes import parse_class_lines
from tagalign_eval.predict import predict_images
from tagalign_eval.protocols import STUFF_BACKGROUND, resolve_protocol

FAST = {"short_side": 32, "crop": 32, "stride": 16}


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "photo.png"
    pixels = (np.random.default_rng(1).random((40, 56, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def predicted(model, image, classes, protocol, out):
    for _ in predict_images(model, [image], classes, protocol, out):
        pass
    return np.asarray(Image.open(out / f"{image.stem}_pred.png"))


def expected(model, image, classes, protocol):
    """The label map of a segmenter given `classes` as they are, with no protocol prompting."""
    segmenter = model.segmenter(classes, protocol, device="cpu", crop_batch=16)
    return segmenter.segment([np.asarray(Image.open(image))])[0].numpy()


def test_a_protocol_with_prompts_prompts_the_given_classes_as_a_benchmark(tmp_path, image, capsys):
    """sclip resolved for VOC: the background gets the stuff prompts, `boat` VOC's map."""
    model = small_eval_model()
    protocol = resolve_protocol("sclip", "voc", FAST)
    given = parse_class_lines(["background", "cat", "boat"], "--classes")
    by_hand = parse_class_lines(
        ["background: " + "; ".join(STUFF_BACKGROUND), "cat", "boat: boat; ship"], "by hand"
    )
    labels = predicted(model, image, given, protocol, tmp_path / "out")
    assert (labels == expected(model, image, by_hand, protocol)).all()
    # the prompts changed the result: the unprompted list (threshold 0.1 background) differs
    assert (labels != expected(model, image, given, protocol)).any()
    assert capsys.readouterr().err == ""


def test_predict_warns_once_about_per_benchmark_prompts_it_cannot_apply(tmp_path, image, capsys):
    model = small_eval_model()
    protocol = resolve_protocol("sclip", None, FAST)  # the CLI's: no benchmark, no family
    given = parse_class_lines(["background", "cat", "boat"], "--classes")
    labels = predicted(model, image, given, protocol, tmp_path / "out")
    assert (labels == expected(model, image, given, protocol)).all()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: predict: protocol sclip ")
    assert "background prompts (voc, context, coco-object)" in err
    assert "prompt maps (boat: sclip_voc)" in err
    assert "never predicts the unprompted background (threshold 0)" in err
    assert "--bg-thresh" in err and "`background: sky; wall`" in err
    assert (labels != 0).all()  # what it warns about: threshold 0 never picks the background


@pytest.mark.parametrize(
    "protocol_name, overrides, lines, needle",
    [
        ("tagalign-v3", {}, ["background", "cat", "boat"], None),  # no per-benchmark prompts
        ("sclip", {}, ["cat", "sofa"], None),  # nothing they would change
        ("sclip", {}, ["background: sky; wall", "boat: ship"], None),  # the user's own prompts
        ("sclip", {"bg_thresh": 0.2}, ["background", "cat"], "background prompts"),
        ("sclip", {}, ["cat", "person"], "prompt maps (person: sclip_voc)"),
    ],
)
def test_the_warning_only_when_it_matters(
    tmp_path, image, capsys, protocol_name, overrides, lines, needle
):
    protocol = resolve_protocol(protocol_name, None, {**FAST, **overrides})
    predicted(small_eval_model(), image, parse_class_lines(lines, "--classes"), protocol, tmp_path)
    err = capsys.readouterr().err
    if needle is None:
        assert err == ""
    else:
        assert err.count("\n") == 1 and needle in err
        assert "never predicts" not in err  # a background with a threshold above 0 can win
