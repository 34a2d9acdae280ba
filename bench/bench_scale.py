"""Scale check: a synthetic tags.db of N samples x 8 tags (default 1M), then `tagparse vocab` and
the trainer reader `load_labels`, each in a fresh subprocess with its wall time and peak RSS.
Targets (issue 2): vocab <= 60 s; load_labels <= 10 s with peak memory <= 1 GB; (issue 21, part 3)
load_labels' peak growth over its imports <= 1.5x the arrays it returns. Prints a linear
extrapolation to CC12M (12.4M captions); issue 21 asks for it from 4M samples.

    .venv/bin/python bench/bench_scale.py [--samples 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchargs import OneLineParser, count

CC12M = 12_400_000
N_OBJECT_NAMES, N_ATTRIBUTE_NAMES = 50_000, 5_000


def build_synthetic(path: Path, n: int, seed: int = 0) -> None:
    """Bulk-write samples + one parser's parses: 5 object, 3 attribute tags per caption (Zipf)."""
    from tagparse.db import TagsDB
    from tagparse.parsing import ParserSpec

    db = TagsDB.open(path, create=True)
    pid = db.register_parser(ParserSpec(backend="synthetic", normalizer_version="1", model="zipf"))
    db.close()
    rng = np.random.default_rng(seed)
    objects = [f"object{i}" for i in range(N_OBJECT_NAMES)]
    attributes = [f"attr{i}" for i in range(N_ATTRIBUTE_NAMES)]
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now = time.time()
    chunk = 200_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        obj = (rng.zipf(1.3, size=(m, 5)) - 1) % N_OBJECT_NAMES
        att = (rng.zipf(1.3, size=(m, 3)) - 1) % N_ATTRIBUTE_NAMES
        captions = [f"synthetic caption {start + i}" for i in range(m)]
        hashes = [hashlib.sha1(c.encode()).hexdigest() for c in captions]
        con.executemany(
            "INSERT INTO samples(key, caption, caption_hash) VALUES (?,?,?)",
            ((f"{start + i:09d}", captions[i], hashes[i]) for i in range(m)),
        )
        con.executemany(
            "INSERT INTO parses(caption_hash, parser_id, objects, attributes, raw_output, status, "
            "error, created_at) "
            "VALUES (?,?,?,?,'','ok','',?)",
            (
                (
                    hashes[i],
                    pid,
                    json.dumps([objects[j] for j in obj[i]]),
                    json.dumps([attributes[j] for j in att[i]]),
                    now,
                )
                for i in range(m)
            ),
        )
        con.commit()
    con.close()


def step(kind: str, path: str) -> None:
    """Run one measured step in this (fresh) process and print its figures as JSON."""
    from tagparse.db import TagsDB
    from tagparse.reader import load_labels
    from tagparse.vocab import build_vocab

    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # interpreter + imports
    start = time.perf_counter()
    arrays_mb = None
    if kind == "vocab":
        s = build_vocab(TagsDB.open(path), 10_000, 1_000, progress=False)
        detail = (
            f"{s.labelled:,} samples labelled, {s.sizes['object']} objects, "
            f"{s.sizes['attribute']} attributes"
        )
    else:
        labels = load_labels(path)
        arrays = [labels.keys] + [a for c in labels.labels.values() for a in (c.indptr, c.indices)]
        key_objects = sum(sys.getsizeof(k) for k in labels.keys)  # the str objects themselves
        arrays_mb = (sum(a.nbytes for a in arrays) + key_objects) / 2**20
        detail = (
            f"{len(labels):,} samples, {labels.labels['object'].indices.size:,} object and "
            f"{labels.labels['attribute'].indices.size:,} attribute indices"
        )
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_mb,
                "base_rss_mb": base_mb,
                "arrays_mb": arrays_mb,
                "detail": detail,
            }
        )
    )


def measure(kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--step", kind, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def extrapolate_rss(r: dict, scale: float) -> float:
    """Interpreter and imports stay fixed; the step's own growth scales with the sample count."""
    return r["base_rss_mb"] + (r["peak_rss_mb"] - r["base_rss_mb"]) * scale


def main() -> None:
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=count(), default=1_000_000)
    ap.add_argument("--keep", default=None, help="directory to keep the synthetic tags.db in")
    ap.add_argument("--step", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        step(*args.step)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep or tmp) / "synthetic.db"
        path.unlink(missing_ok=True)
        t = time.perf_counter()
        build_synthetic(path, args.samples)
        print(
            f"synthetic tags.db: {args.samples:,} samples x 8 tags, "
            f"{path.stat().st_size / 2**20:.0f} MiB, "
            f"written in {time.perf_counter() - t:.1f} s"
        )
        vocab = measure("vocab", path)
        load = measure("load", path)
    scale = CC12M / args.samples
    print(
        f"\n| step | {args.samples:,} samples (s) | peak RSS (MiB) | target "
        "| 12.4M extrapolated (s / MiB) |"
    )
    print("|---|---|---|---|---|")
    for name, r, target, ok in (
        ("tagparse vocab (10k obj / 1k attr)", vocab, "<= 60 s", vocab["seconds"] <= 60),
        (
            "load_labels (reader API)",
            load,
            "<= 10 s, <= 1024 MiB",
            load["seconds"] <= 10 and load["peak_rss_mb"] <= 1024,
        ),
    ):
        print(
            f"| {name} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{target} {'PASS' if ok else 'FAIL'} | "
            f"{r['seconds'] * scale:.0f} s / {extrapolate_rss(r, scale):.0f} MiB |"
        )
    print(f"\nvocab: {vocab['detail']}\nload: {load['detail']}")
    growth = load["peak_rss_mb"] - load["base_rss_mb"]
    ratio = growth / load["arrays_mb"] if load["arrays_mb"] else float("nan")
    print(
        f"load_labels: peak growth {growth:.0f} MiB over {load['base_rss_mb']:.0f} MiB of imports "
        f"= {ratio:.2f}x its {load['arrays_mb']:.0f} MiB of arrays (target <= 1.5x): "
        f"{'PASS' if ratio <= 1.5 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
