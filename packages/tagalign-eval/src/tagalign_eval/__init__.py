"""tagalign-eval: open-vocabulary semantic segmentation benchmarks and single-image prediction.

The Python entry points are re-exported here and imported on first use, so that
`tagalign-eval --help` (which imports this package) does not pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BenchmarkResult": "tagalign_eval.result",
    "EvalError": "tagalign_eval.errors",
    "ModelSpec": "tagalign_eval.suite",
    "SuiteRequest": "tagalign_eval.suite",
    "SuiteResult": "tagalign_eval.result",
    "load_eval_model": "tagalign_eval.models",
    "predict_images": "tagalign_eval.predict",
    "run_suite": "tagalign_eval.suite",
}

__all__ = [
    "BenchmarkResult",
    "EvalError",
    "ModelSpec",
    "SuiteRequest",
    "SuiteResult",
    "load_eval_model",
    "predict_images",
    "run_suite",
]

if TYPE_CHECKING:
    from tagalign_eval.errors import EvalError
    from tagalign_eval.models import load_eval_model
    from tagalign_eval.predict import predict_images
    from tagalign_eval.result import BenchmarkResult, SuiteResult
    from tagalign_eval.suite import ModelSpec, SuiteRequest, run_suite


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tagalign_eval' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
