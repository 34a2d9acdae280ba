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


TAGALIGN = "Qinying-Liu/TagAlign (dev, 70914ae) segmentation/configs/_base_/datasets/"
SCLIP = "wangf3014/SCLIP configs/"

# (preset, family) -> the settings its upstream file gives, and that file. Only the values the
# source states are pinned; docs/protocols.md lists the same values and files.
SOURCES = {
    ("tagalign-v3", "imagenet-s300"): (
        TAGALIGN + "imagenets300.py",
        {"short_side": 448, "max_long_side": 2048, "crop": 448, "stride": 56, "scale": 30.0,
         "clip_blend": 0.5, "bg_thresh": 0.1, "downsample_large": 1000},
    ),
    ("tagalign-v3", "imagenet-s"): (
        TAGALIGN + "imagenets50.py",
        {"short_side": 448, "max_long_side": 2048, "downsample_large": 1000},
    ),
    ("tagalign-v1", "imagenet-s"): (
        "Qinying-Liu/TagAlign (main) configs/eval.yml + _base_/datasets/imagenets50.py",
        {"short_side": 448, "stride": 224, "bg_thresh": 0.4, "scale": 10.0, "bias": -2.5,
         "clip_blend": 0.3, "downsample_large": 1000},
    ),
    ("tagalign-v1", "imagenet-s919"): (
        TAGALIGN + "imagenets919.py",
        {"short_side": 256, "max_long_side": 1024, "crop": 448, "stride": 224,
         "downsample_large": 1000},
    ),
    ("tagalign-v3", "imagenet-s919"): (
        TAGALIGN + "imagenets919.py",
        {"short_side": 256, "max_long_side": 1024, "crop": 448, "stride": 224,
         "downsample_large": 1000},
    ),
    ("sclip", "voc"): (
        SCLIP + "cfg_voc21.py",
        {"short_side": 336, "max_long_side": 2048, "scale": 65.0, "bg_thresh": 0.1,
         "area_thresh": 0.1},
    ),
    ("sclip", "context"): (
        SCLIP + "cfg_context60.py",
        {"short_side": 336, "scale": 50.0, "bg_thresh": 0.1, "background_prompts": ("background",)},
    ),
    ("sclip", "coco-object"): (
        SCLIP + "cfg_coco_object.py",
        {"short_side": 336, "scale": 50.0, "bg_thresh": 0.1, "area_thresh": 0.0},
    ),
    ("sclip", "voc20"): (SCLIP + "cfg_voc20.py", {"short_side": 336, "scale": 40.0}),
    ("sclip", "context59"): (SCLIP + "cfg_context59.py", {"short_side": 336, "scale": 40.0}),
    ("sclip", "coco-stuff"): (SCLIP + "cfg_coco_stuff164k.py", {"short_side": 448, "scale": 40.0}),
    ("sclip", "cityscapes"): (SCLIP + "cfg_city_scapes.py", {"short_side": 560, "scale": 40.0}),
    ("sclip", "ade20k"): (SCLIP + "cfg_ade20k.py", {"short_side": 336, "scale": 40.0}),
}  # fmt: skip

# What wangf3014/SCLIP's clip_segmentor.py (CLIPForSegmentation) does for every dataset.
SCLIP_SEGMENTOR = {
    "crop": 224,
    "stride": 112,
    "head": "softmax",
    "background": "threshold",
    "window_average": "similarities",
    "normalize": "clip",
    "pamr": False,
    "clip_blend": 0.0,
}


@pytest.mark.parametrize(("preset", "family"), sorted(SOURCES))
def test_presets_equal_their_source_files(preset, family):
    source, values = SOURCES[(preset, family)]
    protocol = resolve_protocol(preset, family)
    assert {k: getattr(protocol, k) for k in values} == values, source
    if preset == "sclip":
        assert {k: getattr(protocol, k) for k in SCLIP_SEGMENTOR} == SCLIP_SEGMENTOR


def test_sclip_prompts_with_clips_80_imagenet_templates():
    templates = resolve_protocol("sclip", "voc").templates
    assert len(templates) == 80 and len(set(templates)) == 80
    assert templates[0] == "a bad photo of a {}." and templates[-1] == "a tattoo of the {}."
    assert "itap of a {}." in templates


def test_tagalign_presets_keep_their_earlier_values():
    """Settings whose source values were right already: only the normalisation moved (to
    ImageNet's, TagAlign's `img_norm_cfg`; see test_eval_protocol_sources.py)."""
    for family in ("voc", "context", "coco-object", "context59", "ade20k"):
        for name in ("tagalign-v1", "tagalign-v3"):
            p = resolve_protocol(name, family)
            assert (p.window_average, p.area_thresh, p.downsample_large) == ("probabilities", 0, 0)
            assert (p.background_prompts, p.class_prompts, p.normalize) == ((), "", "imagenet")
    assert resolve_protocol("tagalign-v3", "imagenet-s").bg_thresh == 0.3  # ImageNet-S50


def test_new_settings_are_validated():
    for overrides, message in [
        ({"window_average": "median"}, "window_average must be"),
        ({"normalize": "srgb"}, "normalize must be"),
        ({"area_thresh": 1.0}, "area_thresh"),
        ({"downsample_large": -1}, "downsample_large"),
        ({"clip_blend": 0.5}, "clip-blend"),
        ({"pamr": True}, "pamr"),
    ]:
        with pytest.raises(EvalError, match=message):
            resolve_protocol("sclip", "voc", overrides)
    p = resolve_protocol("tagalign-v3", "voc", {"background_prompts": ["sky", "wall"]})
    assert p.background_prompts == ("sky", "wall")
    assert p.to_dict()["background_prompts"] == ["sky", "wall"]


def test_overrides_win_are_recorded_and_validated():
    p = resolve_protocol(
        "tagalign-v3", "voc", {"stride": 112, "bg_thresh": None, "templates": ["itap of a {}."]}
    )
    d = p.to_dict()
    assert d["stride"] == 112 and d["bg_thresh"] == 0.45 and d["templates"] == ["itap of a {}."]
    with pytest.raises(EvalError, match="larger than --crop"):
        resolve_protocol("tagalign-v3", None, {"stride": 500})
    with pytest.raises(EvalError, match="not a format string with one {} for the class name"):
        resolve_protocol("sclip", None, {"templates": ["a photo"]})
    with pytest.raises(EvalError, match="unknown protocol"):
        resolve_protocol("tagalign-v2")


def test_banner_shows_a_template_set_as_its_count_and_first_template():
    from types import SimpleNamespace

    from tagalign_eval.report import protocol_banner

    def banner(name, overrides=None):
        p = resolve_protocol(name, "voc", overrides)
        return protocol_banner(SimpleNamespace(protocol=p, clip_blend_applied=True))

    sclip = banner("sclip")
    assert "\n" not in sclip and len(sclip) < 300
    assert sclip.endswith('templates: 80 (OpenAI ImageNet set; first: "a bad photo of a {}.")')
    assert "normalize clip" in sclip and "itap of a" not in sclip
    v3 = banner("tagalign-v3")
    assert v3.endswith('normalize imagenet, template "a photo of a {}."')
    own = banner("tagalign-v3", {"templates": ["itap of a {}.", "a {} photo."]})
    assert own.endswith('templates: 2 (first: "itap of a {}.")')
    # the OpenAI set reordered is not the OpenAI set
    reordered = list(resolve_protocol("sclip").templates)[::-1]
    assert "OpenAI" not in banner("sclip", {"templates": reordered})
