"""Backend registry: a name on the command line -> a parser, imported only when asked for.

Each built-in backend lives in `tagparse.backends.<module>` and exposes `create(**options)`; its
heavy dependencies come from a pip extra, so `import tagparse` never pulls spaCy, NLTK or vLLM.
A module may also expose `spec(**options) -> ParserSpec`, the parser's fingerprint without
loading a model, which lets a re-run of a fully cached corpus skip building the backend at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

from tagparse.backends.base import Backend
from tagparse.errors import TagparseError
from tagparse.parsing import ParserSpec

# name -> (module inside tagparse.backends, pip extra that installs its dependencies)
BUILTIN: dict[str, tuple[str, str]] = {
    "spacy": ("spacy_backend", "spacy"),
    "nltk": ("nltk_backend", "nltk"),
    "openai": ("openai_backend", "llm"),
    "vllm": ("vllm_backend", "vllm"),
}

# Backends added at run time (plugins, tests): name -> create(**options).
_registered: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, create: Callable[..., Backend]) -> None:
    """Make `create` available as `--backend name` (it must be importable by worker processes)."""
    _registered[name] = create


def unregister_backend(name: str) -> None:
    _registered.pop(name, None)


def backend_names() -> list[str]:
    return sorted(set(BUILTIN) | set(_registered))


def backend_factory(name: str) -> Callable[..., Backend]:
    """The `create` function of backend `name`; one-line errors for unknown or uninstalled ones."""
    if name in _registered:
        return _registered[name]
    return _module(name).create


def backend_spec(name: str, **options) -> ParserSpec | None:
    """The backend's fingerprint without building it, when its module offers `spec()`."""
    if name in _registered:
        return None
    module = _module(name)
    if not hasattr(module, "spec"):
        return None
    with _extra_hint(name):
        return module.spec(**options)


def make_backend(name: str, **options) -> Backend:
    """Build backend `name` with `tagparse run`'s options; one of another backend is refused
    with the line `tagparse run` prints (`check_options`)."""
    from tagparse.backends.options import check_options  # fieldoptions: only when building

    check_options(name, options)
    return build_backend(name, backend_factory(name), options)


def build_backend(name: str, create: Callable[..., Backend], options: dict) -> Backend:
    """Call a resolved `create`; worker processes use this with the factory the parent resolved."""
    with _extra_hint(name):
        return create(**options)


def _module(name: str) -> ModuleType:
    if name not in BUILTIN:
        raise TagparseError(
            f"unknown backend {name!r}; choose one of: {', '.join(backend_names())}"
        )
    module_name = f"tagparse.backends.{BUILTIN[name][0]}"
    with _extra_hint(name):
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                raise TagparseError(
                    f"backend {name!r} is not part of this tagparse installation "
                    f"({module_name} is missing); upgrade tagparse"
                ) from None
            raise


@contextmanager
def _extra_hint(name: str) -> Iterator[None]:
    """Turn an ImportError of a backend's dependency into a one-line `pip install` hint."""
    try:
        yield
    except ImportError as e:
        extra = BUILTIN.get(name, ("", name))[1]
        missing = e.name or str(e)
        raise TagparseError(
            f"backend {name!r} needs {missing!r}, which is not installed; "
            f"pip install 'tagparse[{extra}]'"
        ) from None
