"""tagalign-eval: open-vocabulary semantic segmentation benchmarks and single-image prediction."""

__version__ = "0.1.0"
