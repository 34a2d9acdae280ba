"""Per-parser precision and recall from review verdicts, with Wilson 95% confidence intervals.

A parser's tag on a reviewed sample is a true positive when its latest verdict is accept and a
false positive when it is reject (unjudged tags do not count). Recall is measured against the tags
the reviewer confirmed (accepted from any parser, or added): the share of them this parser produced.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from tagparse.db import Reader
from tagparse.db.schema import KINDS
from tagparse.db.verdicts import LatestVerdicts

Z95 = 1.959963984540054
TRUE_VERDICTS = ("accept", "add")


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when there is no observation."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Rate:
    hits: int = 0
    n: int = 0

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.hits, self.n)


@dataclass
class ParserScore:
    parser_id: int
    label: str
    kind: str  # "object" | "attribute" | "all"
    samples: int  # reviewed samples this parser parsed
    precision: Rate
    recall: Rate


def parser_scores(
    r: Reader, parsers: dict[int, str], verdicts: LatestVerdicts | None = None
) -> list[ParserScore]:
    """Scores per parser for each kind and for both kinds together ("all")."""
    verdicts = r.latest_verdicts() if verdicts is None else verdicts
    scores = {
        (pid, kind): ParserScore(pid, label, kind, 0, Rate(), Rate())
        for pid, label in parsers.items()
        for kind in (*KINDS, "all")
    }
    for sid, pid, objects, attributes in r.parses_of_samples(list(verdicts), list(parsers)):
        tags = [("object", t) for t in json.loads(objects)]
        tags += [("attribute", t) for t in json.loads(attributes)]
        v = verdicts[sid]
        truth = {t for t, verdict in v.items() if verdict in TRUE_VERDICTS}
        for kind in (*KINDS, "all"):
            s = scores[(pid, kind)]
            s.samples += 1
            mine = {t for t in tags if kind in ("all", t[0])}
            for t in mine:
                if v.get(t) == "accept":
                    s.precision.hits += 1
                    s.precision.n += 1
                elif v.get(t) == "reject":
                    s.precision.n += 1
            wanted = {t for t in truth if kind in ("all", t[0])}
            s.recall.hits += len(wanted & mine)
            s.recall.n += len(wanted)
    return list(scores.values())


def format_rate(rate: Rate) -> str:
    """`91.2% [85.0–95.1] n=120`, or `– n=0` before any verdict."""
    if rate.value is None:
        return "– n=0"
    lo, hi = rate.ci
    return f"{100 * rate.value:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}] n={rate.n}"
