"""One compared model's figures on a whole-image task (classification, retrieval), the table that
puts the models side by side, and the results file, written like the segmentation results
(atomically; a fault writing it is one `error:` line)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagalign_eval.embedding import GlobalEncoder
from tagalign_eval.report import _write_text


@dataclass(frozen=True)
class ModelScores:
    """What one model scored: metric key -> value in percent, and how long it took."""

    label: str
    model: dict[str, Any]
    """What was evaluated: kind, path or model, fingerprint (see `load_eval_model`)."""
    model_config: Any
    metrics: dict[str, float]
    seconds: float
    images_per_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model": dict(self.model),
            "model_config": self.model_config,
            "metrics": dict(self.metrics),
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
        }


def model_scores(
    encoder: GlobalEncoder, metrics: dict[str, float], images: int, seconds: float
) -> ModelScores:
    """`encoder`'s record with its `metrics`, from `images` embedded in `seconds`."""
    info = {k: v for k, v in encoder.info.items() if k != "config"}
    rate = round(images / seconds, 3) if seconds > 0 else None
    return ModelScores(
        encoder.label, info, encoder.info.get("config"), metrics, round(seconds, 3), rate
    )


def scores_table(scores: Sequence[ModelScores], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table, one row per model; `columns` are (metric key, title), and a metric a
    model does not have is shown as `-`."""
    header = ["", *(title for _, title in columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|",
    ]
    for row in scores:
        cells = [f"{row.metrics[k]:.1f}" if k in row.metrics else "-" for k, _ in columns]
        lines.append("| " + " | ".join([row.label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """`payload` as indented JSON, written atomically like results.json."""
    _write_text(path, json.dumps(payload, indent=1, allow_nan=False, default=str))
