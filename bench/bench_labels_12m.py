"""tags.db at CC12M scale (issue 21, part 3): a synthetic N-sample tags.db (default 4M, 5 object
and 3 attribute tags each, as `bench_scale.py` builds it), then `tagparse vocab` and
`load_labels`, each in a fresh process: wall time, peak RSS, and for `load_labels` the size of
the arrays it returns, against the target peak growth <= 1.5x those arrays. Every figure is
also extrapolated linearly to 12.4M samples (CC12M's captions).

    .venv/bin/python bench/bench_labels_12m.py [--samples 4000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import build_synthetic  # the same synthetic file
from benchargs import OneLineParser, count

CC12M_CAPTIONS = 12_400_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(kind: str, path: str) -> None:
    """One measured step in this fresh process; prints its figures as one JSON line."""
    from tagparse.db import TagsDB
    from tagparse.reader import load_labels
    from tagparse.vocab import build_vocab

    base_mb = _peak_mb()  # interpreter + imports
    start = time.perf_counter()
    arrays_mb = None
    if kind == "vocab":
        db = TagsDB.open(path)
        try:
            build_vocab(db, 10_000, 1_000, progress=False)
        finally:
            db.close()
    else:
        labels = load_labels(path)
        arrays = [labels.keys] + [a for c in labels.labels.values() for a in (c.indptr, c.indices)]
        key_objects = sum(sys.getsizeof(k) for k in labels.keys)  # the str objects themselves
        arrays_mb = (sum(a.nbytes for a in arrays) + key_objects) / 2**20
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"seconds": seconds, "peak_mb": _peak_mb(), "base_mb": base_mb, "arrays_mb": arrays_mb}
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


def main() -> None:
    ap = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=count(), default=4_000_000)
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
        print(f"synthetic tags.db: {args.samples:,} samples in {time.perf_counter() - t:.1f} s")
        vocab = measure("vocab", path)
        load = measure("load", path)
    scale = CC12M_CAPTIONS / args.samples
    growth = load["peak_mb"] - load["base_mb"]
    ratio = growth / load["arrays_mb"] if load["arrays_mb"] else float("nan")
    print(f"\n| step | {args.samples:,} samples | 12.4M extrapolated |")
    print("|---|---|---|")
    print(f"| vocab time | {vocab['seconds']:.1f} s | {vocab['seconds'] * scale:.0f} s |")
    vocab_growth = vocab["peak_mb"] - vocab["base_mb"]
    print(f"| vocab peak RSS | {vocab['peak_mb']:.0f} MiB | "
          f"{vocab['base_mb'] + vocab_growth * scale:.0f} MiB |")  # fmt: skip
    print(f"| load_labels time | {load['seconds']:.1f} s | {load['seconds'] * scale:.0f} s |")
    print(f"| load_labels peak RSS | {load['peak_mb']:.0f} MiB | "
          f"{load['base_mb'] + growth * scale:.0f} MiB |")  # fmt: skip
    print(f"| load_labels arrays | {load['arrays_mb']:.0f} MiB | "
          f"{load['arrays_mb'] * scale:.0f} MiB |")  # fmt: skip
    print(
        f"\nload_labels: peak growth {growth:.0f} MiB over {load['base_mb']:.0f} MiB of imports = "
        f"{ratio:.2f}x its arrays (target <= 1.5x): {'PASS' if ratio <= 1.5 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
