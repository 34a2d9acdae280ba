"""Tag normalizer: cleaning rules, singularization, synonyms, stop-list, files, and properties."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tagparse.errors import TagparseError
from tagparse.normalize import (
    NORMALIZER_VERSION,
    Normalizer,
    clean,
    default_stoplist,
    singularize,
    singularize_head,
)


def test_clean_strips_case_punctuation_determiners_numbers_and_possessives():
    assert clean("The Two DOGS!") == "dogs"
    assert clean("a man's 3 hats, 2nd row") == "man hats row"
    assert clean("his  red-and-white T-shirt") == "red-and-white t-shirt"
    assert clean("12.5 ... ?") == ""


@pytest.mark.parametrize(
    "plural, singular",
    [
        ("dogs", "dog"),
        ("buses", "bus"),
        ("children", "child"),
        ("knives", "knife"),
        ("leaves", "leaf"),
        ("grass", "grass"),
        ("dress", "dress"),
        ("people", "people"),
        ("pants", "pants"),
        ("glasses", "glasses"),
        ("scissors", "scissors"),
    ],
)
def test_singularize(plural, singular):
    assert singularize(plural) == singular


def test_only_the_head_of_a_compound_is_singularized():
    assert singularize_head("traffic lights") == "traffic light"
    assert singularize_head("glass bottles") == "glass bottle"
    assert singularize_head("tennis players") == "tennis player"


def test_objects_keep_compounds_dedupe_in_order_and_drop_empty_tags():
    norm = Normalizer(stoplist=set())
    tags = ["Traffic Lights", "the dog", "dogs", "", "  ", "3", "tennis player", "a traffic light"]
    assert norm.objects(tags) == ["traffic light", "dog", "tennis player"]


def test_attributes_are_cleaned_but_not_singularized():
    norm = Normalizer(stoplist=set())
    assert norm.attributes(["Brown", "brown", "glass", "the", "light blue", "multi-colored"]) == [
        "brown",
        "glass",
        "light blue",
        "multi-colored",
    ]


def test_default_stoplist_drops_non_visual_nouns_and_heads():
    stop = default_stoplist()
    assert {"photo", "image", "view", "stock", "background"} <= stop
    assert "picture" not in stop  # often a framed picture: a visible object
    norm = Normalizer()
    assert norm.objects(["stock photo", "dog", "Images", "close-up", "photo booth"]) == [
        "dog",
        "photo booth",
    ]
    assert Normalizer(stoplist=set()).objects(["photo"]) == ["photo"]


def test_synonyms_apply_after_singularization_and_follow_chains():
    norm = Normalizer({"guy": "man", "fella": "guy", "Grey": "gray"}, stoplist=set())
    assert norm.objects(["guys", "Fellas", "man"]) == ["man"]
    assert norm.attributes(["grey", "Gray"]) == ["gray"]


def test_synonym_cycle_is_refused():
    with pytest.raises(TagparseError, match="cycle"):
        Normalizer({"a cat": "kitty", "kitty": "cat"}, stoplist=set())


def test_version_hashes_the_synonyms_and_stoplist():
    base = Normalizer()
    assert base.version.startswith(NORMALIZER_VERSION + "+")
    assert Normalizer().version == base.version
    assert Normalizer({"guy": "man"}).version != base.version
    assert Normalizer(stoplist=set()).version != base.version
    # equivalent spellings of the same map are the same normalizer
    assert Normalizer({"The Guy": "a man!"}).version == Normalizer({"guy": "man"}).version


def test_from_files_reads_tsv_json_and_stoplist(tmp_path):
    tsv = tmp_path / "syn.tsv"
    tsv.write_text("# comment\nguy\tman\n\nlady\twoman  # inline\n", encoding="utf-8")
    js = tmp_path / "syn.json"
    js.write_text(json.dumps({"guy": "man", "lady": "woman"}), encoding="utf-8")
    stop = tmp_path / "stop.txt"
    stop.write_text("# non-visual\nthing\n", encoding="utf-8")
    a = Normalizer.from_files(tsv, stop)
    b = Normalizer.from_files(js, stop)
    assert a.version == b.version
    assert a.objects(["Guys", "thing", "ladies", "photo"]) == ["man", "woman", "photo"]
    assert Normalizer.from_files(js).objects(["photo", "lady"]) == ["woman"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("syn.tsv", "guy man\n", r"syn.tsv:1: expected `from<TAB>to`"),
        ("syn.json", "{bad", r"syn.json: invalid JSON at line 1"),
        ("syn.json", '["guy"]', r"expected a JSON object"),
    ],
)
def test_bad_synonym_files_give_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TagparseError, match=message):
        Normalizer.from_files(path)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(TagparseError, match="no such file"):
        Normalizer.from_files(tmp_path / "nope.tsv")
    bad = tmp_path / "stop.txt"
    bad.write_bytes(b"caf\xe9\n")
    with pytest.raises(TagparseError, match="not UTF-8"):
        Normalizer.from_files(None, bad)


def test_normalizer_pickles_for_worker_processes():
    import pickle

    norm = Normalizer({"guy": "man"})
    clone = pickle.loads(pickle.dumps(norm))
    assert clone.version == norm.version
    assert clone.objects(["guys", "photo"]) == ["man"]


# -- properties ------------------------------------------------------------------------------
WORDS = st.sampled_from(
    [
        "the",
        "a",
        "two",
        "3",
        "Dogs",
        "dog's",
        "traffic",
        "lights",
        "leaves",
        "glasses",
        "photo",
        "guy",
        "guys",
        "ones",
        "t-shirts",
        "-",
        "!!",
        "café",
        "axes",
        "bases",
        "s",
        "ss",
        "people",
        "grey",
    ]
)
TAGS = st.lists(
    st.one_of(st.lists(WORDS, max_size=4).map(" ".join), st.text(max_size=12)), max_size=8
)
NORMALIZERS = [
    Normalizer(),
    Normalizer({"guy": "man", "grey": "gray", "dog": "hound"}, {"photo", "thing"}),
]


@settings(max_examples=120, deadline=None)
@given(TAGS, st.sampled_from(NORMALIZERS))
def test_normalizing_is_idempotent_and_never_yields_empty_or_duplicate_tags(tags, norm):
    for kind in (norm.objects, norm.attributes):
        once = kind(tags)
        assert kind(once) == once
        assert all(t and t == t.strip() for t in once)
        assert len(set(once)) == len(once)


@settings(max_examples=80, deadline=None)
@given(TAGS)
def test_stop_listed_and_synonym_keys_never_survive(tags):
    norm = NORMALIZERS[1]
    out = norm.objects(tags)
    assert not {"photo", "thing", "guy", "grey", "dog"} & set(out)
    assert not any(t.split()[-1] in norm.stoplist for t in out)
