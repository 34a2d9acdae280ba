"""The backend options dataclasses are the one source of `tagparse run`'s backend flags and of
the check refusing another backend's option (issue 20, item 3)."""

from __future__ import annotations

import dataclasses

import pytest
from tagparse.backends import BUILTIN, make_backend, nltk_backend, spacy_backend
from tagparse.backends.options import OPTIONS_OF, backend_kwargs, check_options, option_names
from tagparse.cli.run import run
from tagparse.errors import TagparseError


def _run_flags() -> set[str]:
    return {param.name for param in run.params}


def test_every_builtin_backend_has_an_options_class():
    assert set(OPTIONS_OF) == set(BUILTIN)


def test_every_option_of_every_backend_is_a_run_flag_with_the_fields_default():
    defaults = {p.name: p.default for p in run.params}
    for cls in set(OPTIONS_OF.values()):
        for field in dataclasses.fields(cls):
            assert field.name in _run_flags(), f"{cls.__name__}.{field.name} has no flag"
            assert defaults[field.name] == field.default is None


def test_only_the_llm_backends_take_the_sampling_options():
    for option in ("prompt", "temperature", "max_tokens", "concurrency", "timeout"):
        takers = {name for name, cls in OPTIONS_OF.items() if option in option_names(cls)}
        assert takers == {"openai", "vllm"}, option
    assert {n for n, c in OPTIONS_OF.items() if "base_url" in option_names(c)} == {"openai"}
    assert {n for n, c in OPTIONS_OF.items() if "vllm_python" in option_names(c)} == {"vllm"}


def test_a_foreign_option_names_the_backends_it_belongs_to():
    with pytest.raises(TagparseError) as refused:
        check_options("spacy", {"temperature": 0.7, "model": None})
    message = str(refused.value)
    assert message.startswith("--temperature: not an option of --backend spacy, which takes ")
    assert message.endswith("drop it or pick the backend it belongs to (--backend openai|vllm)")


def test_an_option_no_backend_has_is_refused_without_an_owner():
    with pytest.raises(TagparseError, match=r"--temperatur: .*drop it or pick") as refused:
        check_options("openai", {"temperatur": 0.1})
    assert "(--backend" not in str(refused.value)


def test_unset_options_and_the_api_only_normalizer_pass():
    check_options("nltk", {"temperature": None, "normalizer": object(), "model": "tagparse"})


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"temperature": float("nan")}, "--temperature nan is out of range"),
        ({"timeout": 0}, "--timeout 0 is out of range: it must be > 0"),
        ({"concurrency": 2**63}, "--concurrency"),
        ({"max_retries": -1}, "--max-retries -1 is out of range: it must be >= 0"),
    ],
)
def test_the_api_refuses_the_numbers_the_cli_refuses(options, named):
    with pytest.raises(TagparseError, match=named.replace("(", r"\(")):
        check_options("vllm", options)


def test_a_registered_backend_decides_for_itself():
    check_options("someone-elses-backend", {"temperature": 3.0, "anything": 1})


def test_a_builtin_backend_is_handed_only_the_keywords_it_declares():
    options = {"model": "m", "temperature": None, "concurrency": None, "normalizer": "n"}
    assert backend_kwargs("spacy", options, 64) == {
        "model": "m",
        "normalizer": "n",
        "batch_size": 64,
    }
    assert backend_kwargs("nltk", options, 64) == {"model": "m", "normalizer": "n"}
    llm = backend_kwargs("openai", {**options, "temperature": 0.5}, 64)
    assert llm == {"model": "m", "normalizer": "n", "temperature": 0.5}
    # a registered backend is handed the chunk size and every option set
    assert backend_kwargs("mine", {"colour": "red", "x": None}, 8) == {
        "batch_size": 8,
        "colour": "red",
    }


@pytest.mark.parametrize("module", [nltk_backend, spacy_backend])
def test_the_nlp_factories_take_no_stray_keyword(module):
    """They ended in `**_ignored`: a typo through the Python API ran without a word."""
    for factory in (module.create, module.spec):
        with pytest.raises(TypeError, match="temprature"):
            factory(temprature=0.7)


def test_make_backend_refuses_another_backends_option_with_the_cli_line():
    with pytest.raises(TagparseError, match=r"--temperature: not an option of --backend nltk"):
        make_backend("nltk", temperature=0.7)
