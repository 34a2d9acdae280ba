"""Benchmark of `tagparse review` on a synthetic 1M-sample tags.db (issue 4).

Builds the db with bulk SQL inserts (all samples parsed by a spaCy-like parser, 10% also by an
LLM-like parser, a 1,000-tag vocabulary and labels), then measures through the real Textual app
in headless mode (`App.run_test`): time from nothing to the first rendered screen per order, and
the time of each `s` (next sample) and `r` (reject, one committed write + running precision)
keystroke, beside an unbound key (`z`) that measures the headless pilot itself. Prints each figure
beside its target and the ratio, as wall time and as this process's CPU time (on a shared machine
the wall time includes waiting for other processes).

    .venv/bin/python bench/bench_review.py [--samples 1000000] [--keys 200]
        [--db /tmp/review_bench.db]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import statistics
import time
from pathlib import Path

import numpy as np
from benchargs import OneLineParser, count
from tagparse.db import TagsDB

NOUNS = [f"noun{i}" for i in range(800)]
ADJS = [f"adj{i}" for i in range(200)]


def build_db(path: Path, n: int, seed: int = 0) -> None:
    """Synthetic tags.db: Zipf-distributed tags, so the vocabulary has a real corpus's long tail."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    TagsDB.open(path, create=True).close()
    rng = np.random.default_rng(seed)
    noun_ids = np.minimum(rng.zipf(1.3, size=(n, 3)) - 1, len(NOUNS) - 1)
    adj_ids = np.minimum(rng.zipf(1.5, size=n) - 1, len(ADJS) - 1)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    t0 = time.perf_counter()
    with con:
        con.execute(
            "INSERT INTO parsers(id, fingerprint, backend, model, prompt_id, prompt_hash,"
            " normalizer_version, params, created_at)"
            " VALUES (1,'aaaa1111bbbb2222','spacy','en_core_web_sm','','','n1','{}',0),"
            " (2,'cccc3333dddd4444','openai','smollm2','tags-v1','p1','n1','{}',0)"
        )
        samples, parses, labels = [], [], []
        for i in range(n):
            a, b, c = (NOUNS[j] for j in noun_ids[i])
            adj = ADJS[adj_ids[i]]
            caption = f"a photo of a {adj} {a} next to a {b} and a {c} number {i}"
            h = hashlib.sha1(caption.encode()).hexdigest()
            samples.append((i + 1, f"{i:09d}", caption, h))
            objects = list(dict.fromkeys((a, b, c)))
            parses.append((h, 1, json.dumps(objects), json.dumps([adj]), "", "ok", "", 0.0))
            if i % 10 == 0:  # the LLM parsed 10%, and misses the third object
                parses.append((h, 2, json.dumps(objects[:2]), json.dumps([adj]), "", "ok", "", 0.0))
            labels.append(
                (
                    i + 1,
                    np.sort(noun_ids[i]).astype("<i4").tobytes(),
                    np.array([adj_ids[i]], dtype="<i4").tobytes(),
                )
            )
        con.executemany(
            "INSERT INTO samples(id, key, caption, caption_hash) VALUES (?,?,?,?)", samples
        )
        con.executemany(
            "INSERT INTO parses(caption_hash, parser_id, objects, attributes, raw_output, status,"
            " error, created_at) VALUES (?,?,?,?,?,?,?,?)",
            parses,
        )
        counts = {
            "object": np.bincount(noun_ids.ravel(), minlength=len(NOUNS)),
            "attribute": np.bincount(adj_ids, minlength=len(ADJS)),
        }
        con.executemany(
            "INSERT INTO vocab(kind, idx, tag, count) VALUES (?,?,?,?)",
            [
                (k, i, t, int(counts[k][i]))
                for k, names in (("object", NOUNS), ("attribute", ADJS))
                for i, t in enumerate(names)
            ],
        )
        con.executemany("INSERT INTO labels(sample_id, objects, attributes) VALUES (?,?,?)", labels)
        con.executemany(
            "INSERT INTO meta(key, value) VALUES (?,?)",
            [("vocab_fingerprint", "bench"), ("vocab_built_at", str(time.time()))],
        )
    con.close()
    print(f"built {path} with {n:,} samples in {time.perf_counter() - t0:.1f}s")


async def first_screen(path: Path, order: str) -> float:
    from tagparse.review.app import ReviewApp
    from tagparse.review.session import ReviewSession

    t0, c0 = time.perf_counter(), time.process_time()
    app = ReviewApp(ReviewSession(path, order=order))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        elapsed = time.perf_counter() - t0, time.process_time() - c0
        assert app.session.current is not None
    return elapsed


async def keystrokes(path: Path, n: int) -> dict[str, list[float]]:
    from tagparse.review.app import ReviewApp
    from tagparse.review.session import ReviewSession

    times: dict[str, list[float]] = {k: [] for k in ("s", "r", "z", "s cpu", "r cpu", "z cpu")}
    app = ReviewApp(ReviewSession(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for i in range(n):
            key = "srz"[i % 3]  # z is bound to nothing: the pilot's own cost per keystroke
            t0, c0 = time.perf_counter(), time.process_time()
            await pilot.press(key)
            await pilot.pause()
            times[key].append(time.perf_counter() - t0)
            times[f"{key} cpu"].append(time.process_time() - c0)
    return times


def row(name: str, value: float, target: float | None) -> None:
    ratio = f"{value / target:6.2f}x of target" if target else ""
    print(
        f"{name:<44} {1000 * value:9.1f} ms   "
        f"target {'' if target is None else f'{1000 * target:.0f} ms':<8} {ratio}"
    )


def main() -> None:
    ap = OneLineParser()
    ap.add_argument("--samples", type=count(), default=1_000_000)
    ap.add_argument(
        "--keys",
        type=count(),
        default=300,
        help="keystrokes to time (next, reject, unbound in turn)",
    )
    ap.add_argument("--db", type=Path, default=Path("/tmp/review_bench.db"))
    ap.add_argument("--reuse", action="store_true", help="reuse --db if it exists")
    args = ap.parse_args()
    if not (args.reuse and args.db.exists()):
        build_db(args.db, args.samples)
    con = sqlite3.connect(args.db)
    con.execute("DELETE FROM verdicts")
    con.commit()
    con.close()
    for order in ("random", "unreviewed", "disagreement", "rare"):
        wall, cpu = asyncio.run(first_screen(args.db, order))
        target = 2.0 if order in ("random", "unreviewed") else None
        row(f"first screen, --order {order}", wall, target)
        row(f"first screen, --order {order}, CPU time", cpu, target)
    times = asyncio.run(keystrokes(args.db, args.keys))
    for key, label in (
        ("s", "next sample (s)"),
        ("r", "reject a tag (r: commit + precision)"),
        ("z", "unbound key (z: harness floor)"),
        ("s cpu", "next sample (s), CPU time"),
        ("r cpu", "reject a tag (r), CPU time"),
        ("z cpu", "unbound key (z), CPU time"),
    ):
        t = sorted(times[key])
        target = None if key.startswith("z") else 0.05
        row(f"{label}, mean of {len(t)}", statistics.fmean(t), target)
        row(f"{label}, p95", t[int(0.95 * (len(t) - 1))], target)


if __name__ == "__main__":
    main()
