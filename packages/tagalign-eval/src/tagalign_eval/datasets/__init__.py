"""Benchmarks: specs, the registry (builtins registered on import) and the on-disk loader."""

from tagalign_eval.datasets import builtin as _builtin  # noqa: F401  (registers the ten)
from tagalign_eval.datasets.builtin import PAPER_EIGHT, PAPER_ORDER
from tagalign_eval.datasets.classes import ClassList, classes_from_option, load_class_file
from tagalign_eval.datasets.loader import BenchmarkNotFound, SegDataset, open_benchmark
from tagalign_eval.datasets.registry import benchmark_names, get_benchmark, register_benchmark
from tagalign_eval.datasets.spec import BenchmarkSpec

__all__ = [
    "PAPER_EIGHT",
    "PAPER_ORDER",
    "BenchmarkNotFound",
    "BenchmarkSpec",
    "ClassList",
    "SegDataset",
    "benchmark_names",
    "classes_from_option",
    "get_benchmark",
    "load_class_file",
    "open_benchmark",
    "register_benchmark",
]
