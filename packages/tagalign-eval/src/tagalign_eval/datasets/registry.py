"""The benchmark registry: builtin benchmarks plus any registered by other modules or plugins.

Other packages register through `register_benchmark(name, spec)` at import time, or by declaring
an entry point in the group `tagalign_eval.benchmarks` whose target is a module (or a callable)
that registers its benchmarks; the CLI loads these plugins before looking a name up.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from tagalign_eval.datasets.spec import BenchmarkSpec
from tagalign_eval.errors import EvalError

_REGISTRY: dict[str, BenchmarkSpec] = {}
_plugins_loaded = False


def register_benchmark(name: str, spec: BenchmarkSpec, *, replace: bool = False) -> None:
    if name in _REGISTRY and not replace:
        raise ValueError(f"benchmark {name!r} is already registered")
    _REGISTRY[name] = spec


def load_plugins() -> None:
    """Import the entry points of group `tagalign_eval.benchmarks` once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="tagalign_eval.benchmarks"):
        target = ep.load()
        if callable(target):
            target()


def get_benchmark(name: str) -> BenchmarkSpec:
    load_plugins()
    if name not in _REGISTRY:
        raise EvalError(f"unknown benchmark {name!r}; known: {', '.join(benchmark_names())}")
    return _REGISTRY[name]


def benchmark_names() -> list[str]:
    load_plugins()
    return list(_REGISTRY)
