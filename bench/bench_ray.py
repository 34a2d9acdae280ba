"""Ray overhead (issue 21): the same FACTUAL captions through spaCy three ways, alternated.

A: `--distributor ray --workers 2` (a local Ray cluster started by the run, as the command does)
B: one process (`--workers 1`)
C: `--workers 2` (two worker processes, no Ray)

Each arm parses into a fresh tags.db, in the order A B C repeated `--rounds` times, so a change
of machine load hits every arm alike; it prints every run's seconds, each arm's median and the
medians' ratios to B. A's seconds include starting and stopping its Ray cluster.

    .venv/bin/python bench/bench_ray.py [--captions 1000] [--rounds 3]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_llm import read_subset  # the same FACTUAL subset as the LLM benches
from benchargs import OneLineParser, count
from tagparse.pipeline import run_parse

ARMS = {
    "A ray, 2 workers": {"distributor": "ray", "workers": 2},
    "B one process": {"distributor": "local", "workers": 1},
    "C --workers 2": {"distributor": "local", "workers": 2},
}


def one_run(csv_path: Path, db: Path, batch_size: int, arm: dict) -> float:
    started = time.perf_counter()
    summary = run_parse(
        db, [str(csv_path)], "spacy", {}, batch_size=batch_size, progress=False, **arm
    )
    seconds = time.perf_counter() - started
    if not summary.ok or summary.cached:
        raise SystemExit(f"error: an arm did not parse every caption afresh: {summary.lines()}")
    return seconds


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captions", type=count(), default=1000, help="distinct FACTUAL captions")
    ap.add_argument("--rounds", type=count(), default=3, help="A B C repetitions")
    ap.add_argument("--batch-size", type=count(), default=256, help="--chunk-size of every arm")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "captions.csv"
        captions = read_subset(args.captions, csv_path)
        print(
            f"{len(captions):,} FACTUAL test captions, spaCy, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at start"
        )
        seconds: dict[str, list[float]] = {name: [] for name in ARMS}
        for round_ in range(args.rounds):
            for name, arm in ARMS.items():
                db = workdir / f"{round_}-{name[0]}.db"
                seconds[name].append(one_run(csv_path, db, args.batch_size, arm))
                print(f"round {round_ + 1} {name:<18}{seconds[name][-1]:>8.1f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    baseline = medians["B one process"]
    print(f"\n{'arm':<18}{'median s':>10}{'captions/s':>12}{'vs B':>8}   runs")
    for name, median in medians.items():
        runs = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(
            f"{name:<18}{median:>10.1f}{len(captions) / median:>12.0f}"
            f"{baseline / median:>7.2f}x   {runs}"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
