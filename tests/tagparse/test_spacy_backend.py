"""spaCy backend on the real en_core_web_sm pipeline: extraction rules, batching, failures, spec."""

import multiprocessing
from pathlib import Path

import pytest
from tagparse.backends import make_backend, spacy_backend
from tagparse.errors import TagparseError
from tagparse.normalize import Normalizer
from tagparse.score import read_gold, score_predictions

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "factual_sample.csv"


@pytest.fixture(scope="module")
def backend():
    return spacy_backend.create(batch_size=16)


def parse(backend, caption):
    (result,) = backend.parse_batch([caption])
    assert result.status == "ok", result.error
    return result.objects, result.attributes


def test_paper_example(backend):
    objects, attributes = parse(
        backend, "A small kitten lying on the grass, playing with a brown shoe."
    )
    assert objects == ["kitten", "grass", "shoe"]
    assert attributes == ["small", "brown"]


@pytest.mark.parametrize(
    "caption, objects, attributes",
    [
        (
            "the brick walkway is wet",
            ["walkway"],
            ["brick", "wet"],
        ),  # material modifier -> attribute
        ("a glass window on a stone wall", ["window", "wall"], ["glass", "stone"]),
        ("tennis players on a court", ["tennis player", "court"], []),  # compound kept, singular
        ("traffic lights above the street", ["traffic light", "street"], []),
        ("the sky is blue", ["sky"], ["blue"]),  # predicate adjective
        ("a black and white cat", ["cat"], ["black", "white"]),  # conjoined adjectives
        (
            "a man in a light blue t-shirt",
            ["man", "t-shirt"],
            ["light blue"],
        ),  # shade + hyphenated noun
        (
            "a group of people on the side of the road",
            ["people", "road"],
            [],
        ),  # locator nouns skipped
        ("a wood desk in the office", ["desk", "office"], ["wooden"]),
    ],
)
def test_rules(backend, caption, objects, attributes):
    got_objects, got_attributes = parse(backend, caption)
    assert got_objects == objects
    assert sorted(got_attributes) == sorted(attributes)


def test_batch_keeps_order_and_reports_empty_captions(backend):
    captions = ["a red car", "", "   ", "two dogs on a beach"] * 10
    results = backend.parse_batch(captions)
    assert len(results) == len(captions)
    for caption, result in zip(captions, results):
        if caption.strip():
            assert result.status == "ok" and result.objects
        else:
            assert result.status == "error" and result.error == "empty caption"
    assert results[0].objects == ["car"] and results[3].objects == ["dog", "beach"]


def test_unused_pipes_are_disabled_and_spec_names_the_pipeline(backend):
    assert "ner" not in backend.nlp.pipe_names and "parser" in backend.nlp.pipe_names
    spec = backend.spec
    assert spec.backend == "spacy"
    assert spec.model.startswith("en_core_web_sm") and "@3." in spec.model
    assert spec.normalizer_version == Normalizer().version
    # the cheap fingerprint (no model load) agrees with the loaded backend's
    assert spacy_backend.spec().fingerprint == spec.fingerprint
    assert spacy_backend.spec(normalizer=Normalizer({"guy": "man"})).fingerprint != spec.fingerprint


def test_the_word_lists_content_is_in_the_fingerprint(backend):
    """The lexicon is data (data/spacy_words/*.txt, issue 20 item 8): what its files hold is in
    the parser fingerprint, so an edited list re-parses instead of mixing tags of two lexicons."""
    assert backend.spec.params["words"] == spacy_backend.WORDS_HASH
    lists = {n: spacy_backend._word_list(n) for n in spacy_backend._WORDS}
    assert "crimson" in lists["colours"] and "group" in lists["quantity_nouns"]
    assert not any(w.startswith("#") or not w for words in lists.values() for w in words)
    edited = {**lists, "shades": lists["shades"] | {"dusky"}}
    assert spacy_backend.words_hash(edited) != spacy_backend.WORDS_HASH
    reordered = {n: frozenset(sorted(lists[n], reverse=True)) for n in reversed(list(lists))}
    assert spacy_backend.words_hash(reordered) == spacy_backend.WORDS_HASH


def test_registry_passes_options_and_refuses_other_backends_options():
    norm = Normalizer({"kitten": "cat"})
    backend = make_backend("spacy", normalizer=norm, batch_size=4)
    assert backend.parse_batch(["a kitten"])[0].objects == ["cat"]
    assert backend.spec.normalizer_version == norm.version
    with pytest.raises(TagparseError, match=r"--base-url, --concurrency: not an option of"):
        make_backend("spacy", normalizer=norm, base_url="http://x", concurrency=3)


def test_unknown_pipeline_is_a_one_line_error():
    with pytest.raises(TagparseError, match="no_such_pipeline is not installed"):
        spacy_backend.create(model="no_such_pipeline")


def _parse_in_child(queue):
    backend = spacy_backend.create()
    queue.put(backend.parse_batch(["a dog on a red couch"])[0].objects)


@pytest.mark.slow
def test_constructible_in_a_spawned_worker_process():
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_parse_in_child, args=(queue,))
    proc.start()
    try:
        assert queue.get(timeout=120) == ["dog", "couch"]
    finally:
        proc.join(timeout=30)
    assert proc.exitcode == 0


def test_quality_on_the_factual_sample(backend):
    """A regression floor on 54 real gold rows (bench/bench_quality.py scores the full test set)."""
    gold = read_gold(SAMPLE)
    results = backend.parse_batch([r.caption for r in gold])
    objects, attributes = score_predictions(gold, [(r.objects, r.attributes) for r in results])
    assert objects.f1 >= 0.85, objects.as_dict()
    assert attributes.f1 >= 0.75, attributes.as_dict()
