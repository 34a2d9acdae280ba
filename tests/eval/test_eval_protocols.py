"""Each preset produces exactly the documented settings; overrides win and are validated."""

import pytest
from tagalign_eval.errors import EvalError
from tagalign_eval.protocols import resolve_protocol


def test_tagalign_v1_preset():
    p = resolve_protocol("tagalign-v1", "voc")
    assert (p.short_side, p.max_long_side, p.crop, p.stride) == (448, 2048, 448, 224)
    assert (p.head, p.scale, p.bias) == ("sigmoid", 10.0, -2.5)
    assert (p.clip_blend, p.background, p.bg_thresh, p.pamr) == (0.3, "constant", 0.4, False)
    assert p.templates == ("a photo of a {}.",)
    for family in ("context", "coco-object", "context59"):
        assert resolve_protocol("tagalign-v1", family) == p


def test_tagalign_v3_preset_and_per_dataset_values():
    p = resolve_protocol("tagalign-v3", "ade20k")
    assert (p.short_side, p.crop, p.stride) == (448, 448, 56)
    assert (p.head, p.scale, p.clip_blend, p.background, p.pamr) == (
        "softmax",
        30.0,
        0.5,
        "constant",
        False,
    )
    assert resolve_protocol("tagalign-v3", "voc").bg_thresh == 0.45
    assert resolve_protocol("tagalign-v3", "context").bg_thresh == 0.1
    assert resolve_protocol("tagalign-v3", "coco-object").bg_thresh == 0.3
    assert resolve_protocol("tagalign-v3", "context59").stride == 112
    assert resolve_protocol("tagalign-v3", "context").stride == 56


def test_sclip_preset():
    p = resolve_protocol("sclip", "voc")
    assert (p.short_side, p.crop, p.stride) == (336, 224, 112)
    assert (p.head, p.background, p.bg_thresh, p.clip_blend) == ("softmax", "threshold", 0.1, 0.0)
    assert resolve_protocol("sclip", "ade20k").bg_thresh == 0.0


def test_overrides_win_are_recorded_and_validated():
    p = resolve_protocol(
        "tagalign-v3", "voc", {"stride": 112, "bg_thresh": None, "templates": ["itap of a {}."]}
    )
    d = p.to_dict()
    assert d["stride"] == 112 and d["bg_thresh"] == 0.45 and d["templates"] == ["itap of a {}."]
    with pytest.raises(EvalError, match="larger than --crop"):
        resolve_protocol("tagalign-v3", None, {"stride": 500})
    with pytest.raises(EvalError, match="must contain"):
        resolve_protocol("sclip", None, {"templates": ["a photo"]})
    with pytest.raises(EvalError, match="unknown protocol"):
        resolve_protocol("tagalign-v2")
