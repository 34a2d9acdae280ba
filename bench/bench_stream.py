"""Batch barrier vs streaming window (issue 21), through `run_parse` and a real tags.db.

Both arms run `tagparse run`'s pipeline with the OpenAI backend against the FAKE chat server of
the tests (tests/tagparse/llm/conftest.py): a fake because its latency is the point, and a real
server's cannot be chosen. Each answer waits a latency drawn from a long-tailed log-normal
distribution (median 50 ms, sigma 1: mean 82 ms, p99 about 0.5 s; a fixed seed per arm run).

- A, barrier: the backend without `open_stream`, so the pipeline sends `parse_batch` calls of
  `--chunk-size` (256) one at a time and waits for each: what `tagparse run` did before.
- B, streaming: the backend as shipped (a window of 2 x --concurrency, refilled per reply).

Alternated A B A B A B in one process; prints each wall time, each A/B ratio and the median.
Usage: python3 -m uv run python bench/bench_stream.py [--captions 2000] [--concurrency 64]
"""

from __future__ import annotations

import csv
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tagparse" / "llm"))

from benchargs import OneLineParser, count
from conftest import FakeChatServer
from tagparse.backends import openai_backend, register_backend
from tagparse.pipeline import run_parse


class Barrier:
    """The OpenAI backend with its batch API only: the pipeline falls back to whole batches."""

    def __init__(self, **options):
        self._backend = openai_backend.create(**options)
        self.spec = self._backend.spec

    def parse_batch(self, captions):
        return self._backend.parse_batch(captions)


def lognormal(seed: int):
    rng = random.Random(seed)
    return lambda: rng.lognormvariate(-3.0, 1.0)  # exp(-3) = 50 ms median


def one_run(arm: str, url: str, captions: Path, db: Path, concurrency: int) -> float:
    start = time.perf_counter()
    summary = run_parse(
        db,
        [str(captions)],
        "barrier" if arm == "A" else "openai",
        {"base_url": url, "concurrency": concurrency},
        progress=False,
    )
    assert summary.ok and summary.parsed > 0, summary.lines()
    return time.perf_counter() - start


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captions", type=count(), default=2000)
    ap.add_argument("--concurrency", type=count(), default=64)
    args = ap.parse_args()
    register_backend("barrier", Barrier)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "captions.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "caption"])
            w.writerows((f"{i:06d}.jpg", f"photo {i} of a red car") for i in range(args.captions))
        times: dict[str, list[float]] = {"A": [], "B": []}
        for i, arm in enumerate("ABABAB"):
            server = FakeChatServer(delay_s=lognormal(i // 2)).start()  # same draws per pair
            try:
                db = Path(tmp) / f"run{i}.db"
                times[arm].append(one_run(arm, server.url, path, db, args.concurrency))
            finally:
                server.stop()
            print(f"{arm}: {times[arm][-1]:.2f} s", flush=True)
    ratios = [a / b for a, b in zip(times["A"], times["B"])]
    print("barrier/streaming ratios:", ", ".join(f"{r:.2f}" for r in ratios))
    print(
        f"median ratio {statistics.median(ratios):.2f}x ({args.captions} captions, "
        f"concurrency {args.concurrency})"
    )


if __name__ == "__main__":
    main()
