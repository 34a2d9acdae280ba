"""What one benchmark run yields: a frozen record whose `to_dict()` is one entry of results.json;
and what a suite of them yields (`SuiteResult`, the whole results.json).

The record keeps everything needed to reproduce or audit the number: the data and its class list,
the protocol, the model's fingerprint and config, the label values left out of the metric, the
device and the package versions. Readers of results.json rely on its keys and their order, so
`to_dict()` is the one place that spells them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tagalign_eval.metrics import ReportedMetrics
from tagalign_eval.protocols import Protocol
from tagalign_eval.table import markdown_table


@dataclass(frozen=True)
class BenchmarkResult:
    """The outcome of `evaluate()` on one benchmark (identical on every rank of a torchrun)."""

    benchmark: str
    data_root: str
    """The resolved --data-root the images were read from."""
    images: int
    class_source: str
    """Where the class names came from: the benchmark's class file or `--classes`."""
    class_names: tuple[str, ...]
    reduce_zero_label: bool
    ignore_index: int
    protocol: Protocol
    model: dict[str, Any]
    """What was evaluated: kind, path or baseline, fingerprint (see `load_eval_model`)."""
    model_config: Any
    clip_blend_applied: bool
    """False for a baseline: its one dense path makes any CLIP blend a no-op."""
    metrics: ReportedMetrics
    out_of_range_labels: dict[int, int]
    """Mask value -> pixel count of values outside the class range, left out of the metric."""
    out_of_range_files: tuple[str, ...]
    """The first 20 masks holding such values."""
    device: str
    world_size: int
    seconds: float
    images_per_s: float | None
    versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The results.json record (keys and their order are part of the file format)."""
        return {
            "benchmark": self.benchmark,
            "data_root": self.data_root,
            "images": self.images,
            "classes": {
                "source": self.class_source,
                "count": len(self.class_names),
                "names": list(self.class_names),
            },
            "reduce_zero_label": self.reduce_zero_label,
            "ignore_index": self.ignore_index,
            "protocol": self.protocol.to_dict(),
            "model": dict(self.model),
            "model_config": self.model_config,
            "clip_blend_applied": self.clip_blend_applied,
            "metrics": self.metrics.to_dict(),
            "out_of_range_labels": {str(k): v for k, v in sorted(self.out_of_range_labels.items())},
            "out_of_range_files": list(self.out_of_range_files),
            "device": self.device,
            "world_size": self.world_size,
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
            "versions": dict(self.versions),
        }


@dataclass(frozen=True)
class SuiteResult:
    """Every benchmark's result in request order, and the benchmarks skipped (name, reason)."""

    results: tuple[BenchmarkResult, ...]
    label: str
    """Row label of the table (see `ModelSpec.label`)."""
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def table(self) -> str:
        """The Markdown table of mIoU in the paper's column order, with averages."""
        return markdown_table(self.results, label=self.label)

    def to_dict(self) -> dict[str, Any]:
        """The results.json payload."""
        return {"results": [r.to_dict() for r in self.results], "table": self.table}
