"""What the toy-world benches share: seed lists, trained cells over seeds, mean ± sd cells and the
variants/gains table (bench_toy_v2.py and bench_toy_claims.py; bench/ is not a package, so they
import this module from their own folder, as they do benchargs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tagalign_toy.demo import BENCHMARKS, COLUMNS, VARIANTS, mean_sd
from tagalign_toy.stages import ToyPipeline

#: The TagAlign variant (objects and attributes), the one the sweeps vary.
TAGALIGN = ("itc-obj-attr", ["--tag-kinds", "both"])


def whole_image_metrics(world: Path, model: dict) -> dict[str, float]:
    """Zero-shot shape classification of the world's `single` split (top-1...) and retrieval on
    its val captions (recall@k both ways) of one model (`classify`/`retrieval` keywords)."""
    from tagalign_eval.classify import classify
    from tagalign_eval.retrieval import retrieval

    common = {"device": "cpu", "workers": 0, "progress": False}
    captions = world / "VOCdevkit" / "ToyShapes" / "captions.jsonl"
    top = classify(world / "single", **model, **common).scores[0].metrics
    return top | retrieval([captions], **model, **common).scores[0].metrics


def seeds_arg(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def cell(values: list[float]) -> str:
    """`mean ± sd (per-seed values)`."""
    mean, sd = mean_sd(values)
    per_seed = ", ".join(f"{v:.1f}" for v in values)
    return f"{mean:.1f} ± {sd:.1f} ({per_seed})"


@dataclass
class Cell:
    """One trained setting over seeds: mIoU per benchmark per seed, its runs, seconds per run."""

    scores: dict[str, list[float]]
    runs: list[Path] = field(default_factory=list)
    seconds_per_run: float = 0.0


def train_cell(
    pipeline: ToyPipeline, name: str, labels: Path, seeds: tuple[int, ...], flags: list[str]
) -> Cell:
    """`tagalign-train` once per seed into `runs/NAME-seedS`, then `tagalign-eval` on the three
    benchmarks; the time per run includes its evaluation."""
    start = time.perf_counter()
    scores: dict[str, list[float]] = {b: [] for b in BENCHMARKS}
    runs = []
    for seed in seeds:
        run = pipeline.train(pipeline.out / "runs" / f"{name}-seed{seed}", labels, seed, flags)
        runs.append(run)
        for bench, miou in pipeline.evaluate(run, BENCHMARKS).items():
            scores[bench].append(miou)
    return Cell(scores, runs, round((time.perf_counter() - start) / len(seeds), 1))


def variants_section(scores: dict, seeds: tuple[int, ...]) -> list[str]:
    """The variants' table (label -> benchmark -> per-seed mIoU; the training-free one has a
    single value) and the claims' gains per seed."""
    lines = [
        f"Variants over training seeds {list(seeds)} (mean ± sd, per-seed values in brackets):",
        "",
        "| variant | " + " | ".join(COLUMNS[b] for b in BENCHMARKS) + " |",
        "|---|" + "---|" * len(BENCHMARKS),
    ]
    for label, s in scores.items():
        lines.append(f"| {label} | " + " | ".join(cell(s[b]) for b in BENCHMARKS) + " |")
    lines += ["", "| gain, per seed | " + " | ".join(COLUMNS[b] for b in BENCHMARKS) + " |"]
    lines.append("|---|" + "---|" * len(BENCHMARKS))
    for title, values in gains(scores, seeds).items():
        lines.append(f"| {title} | " + " | ".join(cell(values[b]) for b in BENCHMARKS) + " |")
    return lines


#: (title, variant, baseline variant or None for training-free) by VARIANTS' index.
GAINS = (
    ("contrastive only − training-free", 1, None),
    ("+ object tags − contrastive only (claim 1)", 2, 1),
    ("+ object & attribute tags − contrastive only (claim 1)", 3, 1),
    ("+ attribute tags − object tags only (claim 3)", 3, 2),
)


def gains(scores: dict, seeds: tuple[int, ...]) -> dict[str, dict[str, list[float]]]:
    """Per-seed differences between variants (the same seed's runs), per benchmark."""
    labels = [v[0] for v in VARIANTS]
    out = {}
    for title, a, b in GAINS:
        row = {}
        for bench in BENCHMARKS:
            base = scores[labels[b]][bench] if b else scores[labels[0]][bench] * len(seeds)
            row[bench] = [x - y for x, y in zip(scores[labels[a]][bench], base)]
        out[title] = row
    return out
