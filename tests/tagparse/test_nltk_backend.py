"""NLTK baseline backend with the shipped perceptron tagger (the real model file, offline)."""

import gzip
import json
from pathlib import Path

import pytest
from tagparse.backends import make_backend, nltk_backend
from tagparse.errors import TagparseError
from tagparse.normalize import Normalizer
from tagparse.score import read_gold, score_predictions

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "factual_sample.csv"


@pytest.fixture(scope="module")
def backend():
    return nltk_backend.create(model="tagparse")


def test_shipped_tagger_is_small_and_in_nltk_json_form():
    path = nltk_backend.SHIPPED_TAGGER
    assert path.is_file() and path.stat().st_size < 5_000_000
    with gzip.open(path, "rt", encoding="utf-8") as f:
        payload = json.load(f)
    assert payload["format"] == "nltk-perceptron-json"
    assert {"NN", "NNS", "JJ", "VBG", "DT", "IN"} <= set(payload["classes"])


def test_paper_example(backend):
    (result,) = backend.parse_batch(
        ["A small kitten lying on the grass, playing with a brown shoe."]
    )
    assert result.status == "ok"
    assert result.objects == ["kitten", "grass", "shoe"]
    assert result.attributes == ["small", "brown"]


def test_compound_nouns_stay_whole_and_sentences_are_split(backend):
    (result,) = backend.parse_batch(["Tennis players on a court. The sky is blue."])
    assert result.objects == ["tennis player", "court", "sky"]
    assert result.attributes == ["blue"]


def test_empty_captions_fail_alone(backend):
    results = backend.parse_batch(["a red car", "", "a dog"])
    assert [r.status for r in results] == ["ok", "error", "ok"]
    assert results[1].error == "empty caption"


def test_spec_names_the_tagger_and_matches_the_cheap_spec(backend):
    assert backend.spec.backend == "nltk"
    assert backend.spec.model.startswith("tagparse-perceptron@")
    assert nltk_backend.spec(model="tagparse").fingerprint == backend.spec.fingerprint


def test_auto_uses_standard_data_only_when_installed():
    source = nltk_backend.resolve_tagger(None)
    if nltk_backend._standard_installed():
        assert source == nltk_backend.STANDARD_TAGGER
    else:
        assert source == nltk_backend.SHIPPED_TAGGER
        with pytest.raises(TagparseError, match="not installed"):
            nltk_backend.resolve_tagger("nltk")


def test_bad_model_files_are_one_line_errors(tmp_path):
    with pytest.raises(TagparseError, match="no such tagger model"):
        nltk_backend.create(model=str(tmp_path / "missing.json.gz"))
    junk = tmp_path / "junk.json.gz"
    junk.write_bytes(b"not gzip")
    with pytest.raises(TagparseError, match="not a tagger model"):
        nltk_backend.create(model=str(junk))


def test_registry_and_normalizer_option():
    backend = make_backend("nltk", model="tagparse", normalizer=Normalizer({"dog": "hound"}))
    assert backend.parse_batch(["two dogs"])[0].objects == ["hound"]


def test_quality_floor_on_the_factual_sample(backend):
    gold = read_gold(SAMPLE)
    results = backend.parse_batch([r.caption for r in gold])
    objects, attributes = score_predictions(gold, [(r.objects, r.attributes) for r in results])
    assert objects.f1 >= 0.80, objects.as_dict()
    assert attributes.f1 >= 0.65, attributes.as_dict()
