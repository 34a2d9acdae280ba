"""`tagparse review --report`: the review's figures as a table, JSON or CSV; verdict export."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tagparse.db import TagsDB
from tagparse.review.samples import parser_labels
from tagparse.review.stats import ParserScore, parser_scores

SCORE_FIELDS = (
    "parser",
    "kind",
    "samples",
    "tp",
    "judged",
    "precision",
    "precision_lo",
    "precision_hi",
    "found",
    "confirmed",
    "recall",
    "recall_lo",
    "recall_hi",
)
VERDICT_FIELDS = ("key", "parser", "kind", "tag", "verdict", "created_at", "latest")


@dataclass
class Report:
    scores: list[ParserScore]
    most_rejected: list[dict]  # kind, tag, rejected, judged
    verdicts: list[dict]  # every verdict row, oldest first (VERDICT_FIELDS)


def build_report(db: TagsDB, parsers: Sequence[str] = (), top: int = 20) -> Report:
    """Collect scores for every parser (or those named), the most-rejected tags and all verdicts."""
    with db.reader() as r:
        parsers = parser_labels(r, [db.resolve_parser(p).id for p in parsers] if parsers else None)
        latest = r.latest_verdicts()
        scores = parser_scores(r, parsers, latest)
        rejected, judged = Counter(), Counter()
        for per_sample in latest.values():
            for (kind, tag), verdict in per_sample.items():
                if verdict in ("accept", "reject"):
                    judged[(kind, tag)] += 1
                if verdict == "reject":
                    rejected[(kind, tag)] += 1
        most = [
            {"kind": k, "tag": t, "rejected": n, "judged": judged[(k, t)]}
            for (k, t), n in sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        ]
        all_labels = parser_labels(r)
        rows = r.keyed_verdict_rows()
    last_id: dict[tuple[int, str, str], int] = {}
    for vid, _, sid, _, kind, tag, _, _ in rows:
        last_id[(sid, kind, tag)] = vid
    verdicts = [
        {
            "key": key,
            "parser": all_labels.get(pid, ""),
            "kind": kind,
            "tag": tag,
            "verdict": verdict,
            "created_at": datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds"),
            "latest": last_id[(sid, kind, tag)] == vid,
        }
        for vid, key, sid, pid, kind, tag, verdict, ts in rows
    ]
    return Report(scores, most, verdicts)


def _score_row(s: ParserScore) -> dict:
    p, r = s.precision, s.recall
    return {
        "parser": s.label,
        "kind": s.kind,
        "samples": s.samples,
        "tp": p.hits,
        "judged": p.n,
        "precision": p.value,
        "precision_lo": p.ci[0],
        "precision_hi": p.ci[1],
        "found": r.hits,
        "confirmed": r.n,
        "recall": r.value,
        "recall_lo": r.ci[0],
        "recall_hi": r.ci[1],
    }


def render_json(report: Report) -> str:
    return json.dumps(
        {
            "scores": [_score_row(s) for s in report.scores],
            "most_rejected": report.most_rejected,
            "verdicts": report.verdicts,
        },
        indent=2,
        ensure_ascii=False,
    )


def render_csv(report: Report) -> str:
    """The score table as CSV (one row per parser and kind); verdicts go to `--export`."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, SCORE_FIELDS, lineterminator="\n")
    w.writeheader()
    for s in report.scores:
        w.writerow(
            {
                k: ("" if v is None else round(v, 6) if isinstance(v, float) else v)
                for k, v in _score_row(s).items()
            }
        )
    return buf.getvalue()


def _pct(value: float | None, lo: float, hi: float) -> str:
    return "–" if value is None else f"{100 * value:5.1f}% [{100 * lo:5.1f}, {100 * hi:5.1f}]"


def render_table(report: Report) -> str:
    w = max([len("parser")] + [len(s.label) for s in report.scores])
    head = (
        f"{'parser':<{w}} {'kind':<9} {'samples':>7} {'judged':>6}  "
        f"{'precision (95% CI)':<24} recall (95% CI)"
    )
    lines = [head, "-" * len(head)]
    for s in report.scores:
        p, r = s.precision, s.recall
        lines.append(
            f"{s.label:<{w}} {s.kind:<9} {s.samples:>7} {p.n:>6}  {_pct(p.value, *p.ci):<24} "
            f"{_pct(r.value, *r.ci)}"
        )
    lines.append("")
    if report.most_rejected:
        lines.append("most-rejected tags:")
        lines += [
            f"  {m['tag']} ({m['kind']}): rejected {m['rejected']} of {m['judged']}"
            for m in report.most_rejected
        ]
    else:
        lines.append("no rejected tags yet")
    lines.append(
        f"{len(report.verdicts)} verdicts recorded "
        "(export them with --export FILE.csv or --format json)"
    )
    return "\n".join(lines)


def write_verdicts_csv(report: Report, path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, VERDICT_FIELDS)
        w.writeheader()
        w.writerows(report.verdicts)


RENDERERS = {"table": render_table, "json": render_json, "csv": render_csv}
