"""Does `--vllm-args --enforce-eager` make a vLLM CPU run cheaper? Start + parse, side by side.

vLLM's CPU build compiles the model with torch.compile at every engine start (0.32 does not load
its own AOT cache back), which is most of a small run's cost; `--enforce-eager` skips the compile
and decodes uncompiled. Which wins depends on how much there is to decode, so this times what a
user (and the e2e test, tests/tagparse/llm/test_vllm_cpu_e2e.py) pays: one `tagparse run
--backend vllm` as typed, process start to exit, on the first N FACTUAL sample captions, into a
fresh tags.db each time. A = default flags, B = `--vllm-args --enforce-eager`, alternated
A B A B A B; prints each run's seconds and ok-parse count, each pair's ratio and the median.

    .venv/bin/python bench/bench_vllm_eager.py [--captions 16] [--pairs 3]

vLLM and the model come from the test fixture's cache (tests/tagparse/llm/vllm_env.py). Run it
on an otherwise idle machine (check `uptime` before and after).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchargs import OneLineParser, count

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "tagparse" / "llm"))
import vllm_env  # test support: the cached vLLM CPU venv and SmolLM2 folder
from llm_cli import factual_subset  # test support: the e2e test's captions

ARMS = {"default": [], "enforce-eager": ["--vllm-args", "--enforce-eager"]}


def timed_run(python: Path, model: Path, captions: Path, db: Path, extra: list[str]) -> tuple:
    """(seconds, ok parses) of one `tagparse run --backend vllm`, start to exit."""
    cmd = [
        str(Path(sys.executable).with_name("tagparse")),
        *("run", "--backend", "vllm", "--model", str(model), "--input", str(captions)),
        *("--key-column", "region_id", "--db", str(db), "--no-progress", *extra),
    ]
    env = {**os.environ, "TAGPARSE_VLLM_PYTHON": str(python), "VLLM_CPU_KVCACHE_SPACE": "1"}
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"error: tagparse run {' '.join(extra)} failed: {proc.stderr[-2000:]}")
    with sqlite3.connect(db) as con:
        ok = con.execute("SELECT count(*) FROM parses WHERE status = 'ok'").fetchone()[0]
    return seconds, ok


def main() -> None:
    ap = OneLineParser(prog="bench_vllm_eager.py", description=__doc__.splitlines()[0])
    ap.add_argument("--captions", type=count(), default=16)
    ap.add_argument("--pairs", type=count(), default=3)
    args = ap.parse_args()
    prepared = vllm_env.prepare(vllm_env.build_log())
    if isinstance(prepared, str):
        sys.exit(f"error: the vLLM CPU build is not available here: {prepared}")
    python, model = prepared
    with tempfile.TemporaryDirectory(prefix="bench-eager-") as tmp:
        captions = factual_subset(args.captions, Path(tmp))
        print(f"{args.captions} captions, {args.pairs} pairs, model {model.name}")
        print("| pair | default (s) | ok | enforce-eager (s) | ok | default / eager |")
        print("|---|---:|---:|---:|---:|---:|")
        ratios = []
        for pair in range(1, args.pairs + 1):
            seconds = {}
            for arm, extra in ARMS.items():
                db = Path(tmp) / f"{arm}-{pair}.db"
                seconds[arm] = timed_run(python, model, captions, db, extra)
            (a, a_ok), (b, b_ok) = seconds["default"], seconds["enforce-eager"]
            ratios.append(a / b)
            print(f"| {pair} | {a:.1f} | {a_ok} | {b:.1f} | {b_ok} | {a / b:.2f} |", flush=True)
        print(f"\nmedian default / enforce-eager: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
