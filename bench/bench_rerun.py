"""Re-running `tagparse run` on a fully parsed corpus vs the first run (target: >= 50x faster).

Measured two ways, side by side in one run:
- CLI: `tagparse run` as a user types it (process start, imports and all), first run vs re-run;
- API: `run_parse` twice inside one process (what a notebook or a pipeline script sees).

    .venv/bin/python bench/bench_rerun.py [--input CSV] [--key-column region_id] [--backend spacy]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchargs import OneLineParser

ROOT = Path(__file__).resolve().parents[1]
FACTUAL = ROOT.parent / "shared" / "benchmarks" / "factual" / "train.csv"
SAMPLE = ROOT / "examples" / "captions.csv"


def cli_run(db: Path, args: argparse.Namespace) -> float:
    cmd = [
        str(Path(sys.executable).parent / "tagparse"),
        "run",
        "--backend",
        args.backend,
        "--input",
        args.input,
        "--db",
        str(db),
        "--key-column",
        args.key_column,
        "--no-progress",
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"tagparse run failed: {done.stderr}")
    print(
        "   ", done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()
    )
    return elapsed


def api_run(db: Path, args: argparse.Namespace) -> float:
    from tagparse.pipeline import run_parse

    start = time.perf_counter()
    summary = run_parse(
        db,
        [args.input],
        args.backend,
        {},
        progress=False,
        input_options={"key_column": args.key_column},
    )
    elapsed = time.perf_counter() - start
    print("   ", summary.lines()[1])
    return elapsed


def main() -> None:
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = FACTUAL if FACTUAL.exists() else SAMPLE
    ap.add_argument("--input", default=str(default))
    ap.add_argument("--key-column", default="region_id" if default == FACTUAL else "filename")
    ap.add_argument("--backend", default="spacy")
    args = ap.parse_args()
    with open(args.input, encoding="utf-8") as f:
        n = sum(1 for _ in f) - 1
    print(f"corpus: {args.input} (~{n:,} rows), backend {args.backend}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for label, fn in (("CLI", cli_run), ("API", api_run)):
            db = Path(tmp) / f"{label}.db"
            print(f"{label} first run:")
            first = fn(db, args)
            print(f"{label} re-run:")
            again = fn(db, args)
            rows.append((label, first, again))
    print("\n| path | first run (s) | re-run (s) | speed-up | target |")
    print("|---|---|---|---|---|")
    for label, first, again in rows:
        ratio = first / again
        print(
            f"| {label} | {first:.2f} | {again:.3f} | {ratio:.0f}x | "
            f">= 50x {'PASS' if ratio >= 50 else 'FAIL'} |"
        )


if __name__ == "__main__":
    main()
