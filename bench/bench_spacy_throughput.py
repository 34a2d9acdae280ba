"""spaCy backend throughput, side by side in one run.

1. Per process: a naive loop calling `nlp(caption)` per caption with the full pipeline, versus the
   backend's `parse_batch` (`nlp.pipe` in batches, ner/lemmatizer disabled, tag extraction and
   normalization included) on the same captions. Target: >= 2x.
2. Processes: `tagparse.pipeline.run_parse(..., workers=2)` versus `workers=1` into fresh tags.db
   files (model loading in the workers included). Target: >= 1.6x on 2 cores.

    .venv/bin/python bench/bench_spacy_throughput.py [--limit N] [--parts per-process,workers]
"""

from __future__ import annotations

import csv
import os
import resource
import tempfile
import time
from pathlib import Path

import spacy
from benchargs import OneLineParser, count
from tagparse.backends.spacy_backend import create, resolve_pipeline
from tagparse.inputs import InputOptions
from tagparse.pipeline import run_parse
from tqdm import tqdm

DEFAULT_CAPTIONS = Path("/work/shared/benchmarks/factual/train.csv")


def read_captions(path: Path, limit: int | None) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        captions = [row["caption"] for row in csv.DictReader(f)]
    return captions[:limit] if limit else captions


def naive(captions: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `nlp(caption)` per caption, every pipeline component enabled."""
    nlp = spacy.load(resolve_pipeline())
    t0, c0 = time.perf_counter(), time.process_time()
    for caption in tqdm(captions, desc="naive nlp(c)", unit="caption", mininterval=1):
        nlp(caption)
    return time.perf_counter() - t0, time.process_time() - c0


def backend(captions: list[str], batch_size: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the backend's parse_batch, with tag extraction and normalization."""
    parser = create(batch_size=batch_size)
    t0, c0 = time.perf_counter(), time.process_time()
    with tqdm(total=len(captions), desc="backend", unit="caption", mininterval=1) as bar:
        for i in range(0, len(captions), batch_size):
            parser.parse_batch(captions[i : i + batch_size])
            bar.update(min(batch_size, len(captions) - i))
    return time.perf_counter() - t0, time.process_time() - c0


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the worker processes)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def pipeline(
    path: Path, limit: int | None, workers: int, batch_size: int
) -> tuple[int, float, float]:
    """(captions parsed, wall seconds, CPU seconds) of one `run_parse` into a fresh tags.db."""
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), cpu_seconds()
        summary = run_parse(
            Path(tmp) / "tags.db",
            [str(path)],
            "spacy",
            {},
            batch_size=batch_size,
            workers=workers,
            limit=limit,
            progress=True,
            input_options=InputOptions(key_column="region_id"),
        )
        return summary.parsed, time.perf_counter() - t0, cpu_seconds() - c0


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captions", type=Path, default=DEFAULT_CAPTIONS)
    ap.add_argument(
        "--limit", type=count(), default=None, help="first N captions only (default: all)"
    )
    ap.add_argument("--batch-size", type=count(), default=256)
    ap.add_argument(
        "--parts",
        default="per-process,workers",
        help="comma-separated: per-process (naive vs backend), workers (1 vs 2)",
    )
    args = ap.parse_args()

    parts = set(args.parts.split(","))
    captions = read_captions(args.captions, args.limit)
    print(
        f"{len(captions):,} captions from {args.captions}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    if "per-process" in parts:
        (t_naive, c_naive), (t_backend, c_backend) = (
            naive(captions),
            backend(captions, args.batch_size),
        )
        n = len(captions)
        print(
            f"\n{'per process':<34}{'seconds':>9}{'captions/s':>12}"
            f"{'CPU s':>8}{'captions/CPU-s':>16}"
        )
        for name, t, c in [
            ("naive loop nlp(c), full pipeline", t_naive, c_naive),
            ("spacy backend parse_batch", t_backend, c_backend),
        ]:
            print(f"{name:<34}{t:>9.1f}{n / t:>12.0f}{c:>8.1f}{n / c:>16.0f}")
        print(
            f"speed-up: {t_naive / t_backend:.2f}x wall, "
            f"{c_naive / c_backend:.2f}x CPU time (target >= 2x)"
        )

    if "workers" in parts:
        rows = [(w, *pipeline(args.captions, args.limit, w, args.batch_size)) for w in (1, 2)]
        print(
            f"\n{'run_parse':<14}{'parsed':>9}{'seconds':>9}{'captions/s':>12}"
            f"{'CPU s':>8}{'cores used':>12}"
        )
        for w, parsed, secs, cpu in rows:
            print(
                f"{f'workers={w}':<14}{parsed:>9,}{secs:>9.1f}{parsed / secs:>12.0f}"
                f"{cpu:>8.0f}{cpu / secs:>12.2f}"
            )
        print(
            f"speed-up: {rows[0][2] / rows[1][2]:.2f}x (target >= 1.6x; includes model loading "
            f"in each worker)"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at end (other processes share these CPUs)")


if __name__ == "__main__":
    main()
