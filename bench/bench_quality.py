"""Parser quality on FACTUAL test.csv: spaCy and NLTK backends through `tagparse run` + `score`.

Each backend parses the gold captions with the real pipeline into one tags.db, then
`tagparse.score.score_db` prints the micro P/R/F1 table for objects and attributes (the same code
as `tagparse score --gold FILE --db tags.db --parser P`). A spaCy row without the default
stop-list shows what dropping non-visual nouns costs on this benchmark.

    .venv/bin/python bench/bench_quality.py [--gold /work/shared/benchmarks/factual/test.csv]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchargs import OneLineParser
from tagparse.inputs import InputOptions
from tagparse.normalize import Normalizer
from tagparse.pipeline import run_parse
from tagparse.score import score_db

DEFAULT_GOLD = Path("/work/shared/benchmarks/factual/test.csv")
TARGETS = {"objects": 0.90, "attributes": 0.80}  # issue 2, spaCy backend


def main() -> None:
    ap = OneLineParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    ap.add_argument(
        "--db", type=Path, default=None, help="keep the tags.db here (default: a temp dir)"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "tags.db"
        runs = [
            ("spacy", "spacy", {}),
            ("spacy, no stop-list", "spacy", {"normalizer": Normalizer(stoplist=set())}),
            ("nltk", "nltk", {}),
        ]
        reports = []
        for title, backend, options in runs:
            summary = run_parse(
                db,
                [str(args.gold)],
                backend,
                options,
                progress=False,
                input_options=InputOptions(key_column="region_id"),
            )
            report = score_db(args.gold, db, summary.parser.rsplit("@", 1)[1])
            reports.append((title, report))
            print(
                f"== {title} ({summary.records} captions, "
                f"{summary.records / max(summary.seconds, 1e-9):.0f} captions/s incl. model load)"
            )
            print(report.table(), end="\n\n")

    print(
        f"{'parser':<22}{'obj P':>7}{'obj R':>7}{'obj F1':>8}"
        f"{'attr P':>8}{'attr R':>8}{'attr F1':>9}"
    )
    for title, r in reports:
        print(
            f"{title:<22}{r.objects.precision:>7.3f}{r.objects.recall:>7.3f}{r.objects.f1:>8.3f}"
            f"{r.attributes.precision:>8.3f}{r.attributes.recall:>8.3f}{r.attributes.f1:>9.3f}"
        )
    spacy = reports[0][1]
    verdict = all(getattr(spacy, k).f1 >= v for k, v in TARGETS.items())
    print(
        f"spaCy targets (objects F1 >= {TARGETS['objects']}, attributes F1 >= "
        f"{TARGETS['attributes']}): {'met' if verdict else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
