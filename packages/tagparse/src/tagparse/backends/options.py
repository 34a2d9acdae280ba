"""What each built-in backend can be told: one options dataclass per backend.

These classes are the one source of the backend flags of `tagparse run` (name, type, range,
help: `tagparse.fieldoptions` builds the click options from them) and of the check that refuses
an option of another backend, from the command line and from the Python API alike: `--backend
spacy --temperature 0.7` used to run without a word about the flag that did nothing.

Every default is None: the backend picks its own (the openai backend sends 8 requests at a time,
vllm 256 per data-parallel rank), and an unset option is simply not passed on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tagparse.errors import TagparseError
from tagparse.fieldoptions import ranges_of, setting
from tagparse.numbers import MAX_COUNT, Range, flag_name

# Counts have the CLI's upper bound in the API's check too (2**63 overflows deep in a library).
_COUNT_FROM_0 = Range(0, MAX_COUNT)
_COUNT_FROM_1 = Range(1, MAX_COUNT)


@dataclass(frozen=True)
class BackendOptions:
    """Options every built-in backend takes (the spacy and nltk backends take only these)."""

    model: str | None = setting(None, help="spaCy pipeline or LLM model (backend default if unset)")
    synonyms: str | None = setting(
        None, help="synonym map file for the tag normalizer", path=True, file=True
    )
    stoplist: str | None = setting(
        None, help="stop-list file of non-visual nouns", path=True, file=True
    )


@dataclass(frozen=True)
class LLMOptions(BackendOptions):
    """Options of the backends that ask a language model (openai, vllm)."""

    prompt: str | None = setting(None, help="[openai/vllm] prompt template id")
    temperature: float | None = setting(
        None, help="[openai/vllm] sampling temperature", range=Range(0)
    )
    max_tokens: int | None = setting(
        None, help="[openai/vllm] output token limit", range=_COUNT_FROM_1
    )
    concurrency: int | None = setting(
        None,
        help="[openai/vllm] requests at the server (openai: 8; vllm: 256 per data-parallel rank)",
        range=_COUNT_FROM_1,
    )
    max_retries: int | None = setting(
        None, help="[openai/vllm] retries per caption", range=_COUNT_FROM_0
    )
    timeout: float | None = setting(
        None, help="[openai/vllm] seconds per request", range=Range(0, low_open=True)
    )


@dataclass(frozen=True)
class OpenAIOptions(LLMOptions):
    """The openai backend: any OpenAI-compatible server that is already running."""

    base_url: str | None = setting(None, help="[openai] server URL, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = setting(
        None, help="[openai] environment variable holding the API key"
    )


@dataclass(frozen=True)
class VLLMOptions(LLMOptions):
    """The vllm backend: a vLLM server started (and stopped) by the run."""

    tensor_parallel_size: int | None = setting(
        None, help="[vllm] GPUs per model", range=_COUNT_FROM_1
    )
    data_parallel_size: int | None = setting(
        None, help="[vllm] model replicas (TP x DP GPUs)", range=_COUNT_FROM_1
    )
    vllm_python: str | None = setting(
        None,
        help="[vllm] Python (or venv, or `vllm` script) of the environment holding vLLM "
        "(default: $TAGPARSE_VLLM_PYTHON, `vllm` on PATH, this Python)",
    )
    vllm_args: str | None = setting(
        None,
        help="[vllm] more `vllm serve` flags in one string, e.g. '--enforce-eager "
        "--max-model-len 4096' (engine settings only: they are not in the parser fingerprint)",
    )


#: Backend name -> the options it takes.
OPTIONS_OF: dict[str, type[BackendOptions]] = {
    "spacy": BackendOptions,
    "nltk": BackendOptions,
    "openai": OpenAIOptions,
    "vllm": VLLMOptions,
}

#: What the Python API may pass besides the options (a Normalizer built in code; every backend).
API_ONLY = frozenset({"normalizer"})

#: Built-in backends that batch inside one call and so are handed the run's chunk size as
#: `batch_size` (spaCy's `nlp.pipe` batch); the others parse caption by caption or per request.
TAKES_BATCH_SIZE = frozenset({"spacy"})


def option_names(cls: type[BackendOptions]) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def keywords_of(name: str) -> frozenset[str]:
    """Every keyword built-in backend `name`'s `create` takes: its options, the API-only ones
    and, where it batches, `batch_size`."""
    batching = {"batch_size"} if name in TAKES_BATCH_SIZE else set()
    return option_names(OPTIONS_OF[name]) | API_ONLY | batching


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse the options set (not None) that built-in backend `name` does not take, naming them
    as `tagparse run` flags and the backends they belong to, and a number out of its flag's range
    (the Python API meets the checks the CLI makes at parse time); a registered backend's own
    `create` decides what it takes."""
    cls = OPTIONS_OF.get(name)
    if cls is None:
        return
    accepted, known = option_names(cls), keywords_of(name)
    foreign = sorted(k for k, v in options.items() if v is not None and k not in known)
    if not foreign:
        _check_ranges(cls, options)
        return
    given = ", ".join(flag_name(k) for k in foreign)
    takes = ", ".join(flag_name(k) for k in sorted(accepted))
    owners = sorted({b for k in foreign for b, c in OPTIONS_OF.items() if k in option_names(c)})
    belongs = f" (--backend {'|'.join(owners)})" if owners else ""
    advice = "drop it or pick the backend it belongs to" if len(foreign) == 1 else "drop them"
    raise TagparseError(
        f"{given}: not an option of --backend {name}, which takes {takes}; {advice}{belongs}"
    )


def backend_kwargs(name: str, options: Mapping[str, Any], batch_size: int) -> dict[str, Any]:
    """What the run hands backend `name`'s `create` and `spec`: the options set (not None) and,
    where it batches, `batch_size`. A built-in backend is handed only what it declares, so its
    factories take exactly their own keywords and a stray key is a TypeError, not ignored; a
    registered backend is handed everything (its `create` decides, as in `check_options`)."""
    given = {"batch_size": batch_size} | {k: v for k, v in options.items() if v is not None}
    if name not in OPTIONS_OF:
        return given
    known = keywords_of(name)
    return {k: v for k, v in given.items() if k in known}


def _check_ranges(cls: type[BackendOptions], options: Mapping[str, Any]) -> None:
    for name, bounds in ranges_of(cls).items():
        value = options.get(name)
        if isinstance(value, int | float) and (refusal := bounds.refusal(flag_name(name), value)):
            raise TagparseError(refusal)
