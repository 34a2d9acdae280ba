"""The caption-quality axis (issue 22): each level changes the captions as its parameters say,
measured over a few hundred samples (deterministic per seed, so the tolerances never flake), the
clean level is version 2's world, and the images never change with the level."""

from __future__ import annotations

import pytest
from tagalign_toy import generator as g
from tagalign_toy import scene as scenes
from tagalign_toy.caption_noise import CLEAN, LEVELS, CaptionNoise, visual_word_share
from tagalign_toy.gold_backend import image_tags

N = 300
# frozen from version 2's generator (commit ed260ba) before the axis existed
V2_CAPTIONS = {
    ("train", 0): "vector illustration of a little green star on sand",
    ("train", 1): "a small violet triangle and a big violet triangle on sand",
}


def _scenes(level: CaptionNoise, seed: int = 0) -> list[scenes.Scene]:
    return [g.make_sample(seed, "train", i, level)[0] for i in range(N)]


def _rates(scenes: list[scenes.Scene]) -> dict[str, float]:
    mentions = [m for s in scenes for m in s.mentions]
    said = [m for m in mentions if m["said"] is not None]
    return {
        "missing": sum(m["said"] is None for m in mentions) / len(mentions),
        "wrong": sum(m["said"] != m["colour"] for m in said) / len(said),
        "ghost": sum(bool(s.extra) for s in scenes) / len(scenes),
        "share": sum(visual_word_share(s.caption) for s in scenes) / len(scenes),
    }


@pytest.fixture(scope="module")
def rates() -> dict[str, dict[str, float]]:
    return {name: _rates(_scenes(level)) for name, level in LEVELS.items()}


@pytest.mark.parametrize("name", list(LEVELS))
def test_measured_rates_match_the_level(rates, name):
    level, measured = LEVELS[name], rates[name]
    assert measured["missing"] == pytest.approx(level.missing_colour, abs=0.05)
    assert measured["wrong"] == pytest.approx(level.wrong_colour, abs=0.05)
    assert measured["ghost"] == pytest.approx(level.ghost_shape, abs=0.05)


def test_visual_words_are_a_shrinking_share(rates):
    shares = [rates[name]["share"] for name in ("clean", "mid", "far")]
    assert shares[0] > shares[1] + 0.1 > shares[2] + 0.15, shares


def test_clean_level_is_version_2():
    first = g.make_sample(0, "train", 0)[0]
    assert first.caption == V2_CAPTIONS[("train", 0)]
    assert g.make_sample(0, "train", 1)[0].caption == V2_CAPTIONS[("train", 1)]
    assert "noise" not in first.gold() and "mentions" not in first.gold()
    assert g.WorldSpec().key == "v2-s0-t4000-v200-sh1000-o360-p200"


def test_levels_change_words_not_pixels_and_are_deterministic():
    for i in range(20):
        clean = g.make_sample(0, "train", i)
        far = g.make_sample(0, "train", i, LEVELS["far"])
        again = g.make_sample(0, "train", i, LEVELS["far"])
        assert g.jpeg_bytes(clean[1]) == g.jpeg_bytes(far[1])
        assert (clean[2] == far[2]).all() and (clean[3] == far[3]).all()
        assert far[0].caption == again[0].caption and far[0].gold() == again[0].gold()
    assert any(
        g.make_sample(0, "train", i, LEVELS["far"])[0].caption
        != g.make_sample(0, "train", i)[0].caption
        for i in range(5)
    )


def test_digest_differs_per_level_and_per_parameter():
    keys = {g.WorldSpec(captions=name).key for name in LEVELS}
    assert len(keys) == len(LEVELS)
    tweaked = CaptionNoise("far", distractor_words=9)
    assert tweaked.digest != LEVELS["far"].digest
    with pytest.raises(KeyError, match="choose from clean, mid, far"):
        g.WorldSpec(captions="loud")
    with pytest.raises(ValueError):
        CaptionNoise("x", missing_colour=0.0)  # below version 2's own floor


def test_wrong_and_missing_colours_reach_the_caption_tags_not_the_image_tags():
    scenes = _scenes(LEVELS["far"])
    wrong = [s for s in scenes if any(m["said"] not in (None, m["colour"]) for m in s.mentions)]
    assert wrong
    for scene in wrong:
        record = scene.gold()
        bad = {m["said"] for m in scene.mentions if m["said"] not in (None, m["colour"])}
        assert bad <= set(record["attributes"])
        assert not bad & set(image_tags(record)[1])
        assert {o.colour for o in scene.objects} <= set(image_tags(record)[1])
    assert CLEAN.is_clean and not LEVELS["far"].is_clean
