"""Shared helpers for the LLM tests: a caption CSV on disk and `tagparse run --backend openai`."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner, Result
from tagparse.cli import main

FACTUAL_SAMPLE = Path(__file__).resolve().parents[2] / "data" / "factual_sample.csv"


def write_captions_csv(path: Path, captions: list[str]) -> Path:
    """A TagAlign-style `filename,caption` CSV with one row per caption."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "caption"])
        writer.writerows((f"img{i:03d}.jpg", c) for i, c in enumerate(captions))
    return path


def factual_subset(n: int, folder: Path) -> Path:
    """The first `n` rows of the FACTUAL sample (distinct captions, keyed by `region_id`) as a
    CSV in `folder` (the vLLM e2e test and bench/bench_vllm_eager.py run the same captions)."""
    with FACTUAL_SAMPLE.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [row for _, row in zip(range(n), reader)]
        fields = reader.fieldnames
    assert len({row["caption"] for row in rows}) == n
    out = folder / "factual_subset.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out


def run_openai(url: str, csv_path: Path, db: Path, *extra: str) -> Result:
    """Invoke the real `tagparse run` CLI against the server at `url`."""
    args = [
        "run",
        "--backend",
        "openai",
        "--base-url",
        url,
        "--input",
        str(csv_path),
        "--db",
        str(db),
        "--no-progress",
        *extra,
    ]
    return CliRunner().invoke(main, args, catch_exceptions=False)
