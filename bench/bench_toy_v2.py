"""Toy world v2: the paper's claims, measured with seeds (issue 14).

One script, every figure of bench/RESULTS.md's "Issue 14" section, through the real CLIs:

1. the toy CLIP knows the world globally: zero-shot shape and colour top-1 on single objects;
2. ...and localizes poorly: training-free dense mIoU beside a linear probe on its frozen tokens;
3. claim 1 (tags beat contrastive-only) and 4. claim 3 (attribute tags localize attribute-specified
   objects, `toyshapes-pairs`): the demo's variants over `--seeds`, mean ± sd and per seed;
5. claim 2 and the paper's open questions: tag source (gold, spaCy, NLTK, an LLM server), the
   vocabulary size K and the tag loss, for the TagAlign variant, over `--sweep-seeds`.

    .venv/bin/python bench/bench_toy_v2.py --out /tmp/toy-v2            # all of it
    .venv/bin/python bench/bench_toy_v2.py --out /tmp/toy-v2 --no-sweep

Writes OUT/bench.json, OUT/seed_spread.png, OUT/sweep.png and the demo's overlay grids; prints
the Markdown tables. Re-runs reuse the world, the parses and the feature cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from benchargs import OneLineParser, count
from tagalign_toy.demo import BENCHMARKS, COLUMNS, FULL, QUICK, VARIANTS, run_demo
from tagalign_toy.figures import save_picture, seed_spread_plot
from tagalign_toy.gold_backend import NAME as GOLD
from tagalign_toy.gold_backend import register as register_gold
from tagalign_toy.probe import linear_probe_ceiling
from tagalign_toy.stages import ToyPipeline
from toy_tables import (
    TAGALIGN,
    cell,
    seeds_arg,
    train_cell,
    variants_section,
    whole_image_metrics,
)

K_OBJECTS = (6, 12, 40)
K_ATTRIBUTES = (4, 10, 30)
LOSSES = ("softmax", "bce", "balanced")


def global_tasks(
    world: Path, toy_model: str, runs: dict[str, Path | None]
) -> tuple[dict, list[str]]:
    """Zero-shot classification of the `single` split (6 shapes) and retrieval on the val
    captions, for the plain toy CLIP and each trained variant (its first seed): does tag
    supervision of the patch embeddings help or hurt whole-image tasks? (issue 15, part 2)"""
    rows: dict[str, dict[str, float]] = {}
    for label, run in runs.items():
        model = {"checkpoint": run} if run else {"clip_model": toy_model, "pretrained": None}
        rows[label if run else "toy CLIP (its own image embedding)"] = whole_image_metrics(
            world, model
        )
    keys = ["top1", "i2t_R@1", "i2t_R@5", "t2i_R@1", "t2i_R@5"]
    lines = [
        (
            "Whole-image tasks: shape classification of the single-object split (top-1, 6 "
            "classes) and retrieval on the val images' captions (recall@k):"
        ),
        "",
        "| model | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for label, m in rows.items():
        lines.append(f"| {label} | " + " | ".join(f"{m[k]:.1f}" for k in keys) + " |")
    return rows, lines


def sweep(
    pipeline: ToyPipeline, out: Path, seeds: tuple[int, ...], llm: str | None
) -> tuple[list[dict], list[str]]:
    """TagAlign runs varying one thing at a time from the demo's setting (spaCy tags, K 40/30,
    softmax loss): tag source, object K, attribute K, tag loss."""
    register_gold()
    gold = pipeline.world / "train" / "gold.jsonl"
    sources = {"gold (generator)": (GOLD, {"gold": str(gold)}), "spacy": ("spacy", {})}
    sources["nltk"] = ("nltk", {})
    if llm:
        sources[f"llm ({llm})"] = ("openai", {"base_url": llm})
    from tagparse.pipeline import run_parse

    dbs = {}
    for label, (backend, options) in sources.items():
        db = out / "sweep" / f"tags-{backend}.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        run_parse(db, pipeline.shards, backend, options, progress=False)
        print(f"[tags {label}: {time.perf_counter() - start:.0f} s]", flush=True)
        dbs[label] = db
    cells: list[tuple[str, str, Path, int, int, list[str]]] = []
    for label, db in dbs.items():
        cells.append(("tag source", label, db, 40, 30, []))
    for k in K_OBJECTS:
        cells.append(("object K", str(k), dbs["spacy"], k, 30, []))
    for k in K_ATTRIBUTES:
        cells.append(("attribute K", str(k), dbs["spacy"], 40, k, []))
    for loss in LOSSES:
        cells.append(("tag loss", loss, dbs["spacy"], 40, 30, ["--tag-loss", loss]))
    rows = []
    done: dict[tuple, tuple[dict[str, list[float]], float]] = {}  # the shared default runs once
    for axis, value, db, k_obj, k_attr, flags in cells:
        key = (db, k_obj, k_attr, tuple(flags) or ("--tag-loss", "softmax"))
        if key not in done:
            labels_db = out / "sweep" / f"{db.stem}-k{k_obj}-{k_attr}.db"
            if not labels_db.exists():
                labels_db.write_bytes(db.read_bytes())
                pipeline.vocab(labels_db, k_obj, k_attr)
            name = f"sweep-{labels_db.stem}-{key[3][1]}"
            result = train_cell(pipeline, name, labels_db, seeds, [*TAGALIGN[1], *flags])
            done[key] = (result.scores, round(result.seconds_per_run * len(seeds), 1))
        scores, seconds = done[key]
        rows.append({"axis": axis, "value": value, "scores": scores, "seconds": seconds})
    lines = [
        (
            f"Sweep (TagAlign variant, seeds {list(seeds)}; one setting changed at a time from "
            "spaCy tags, K = 40 objects / 30 attributes, softmax tag loss):"
        ),
        "",
        "| axis | value | " + " | ".join(COLUMNS[b] for b in BENCHMARKS) + " | run time |",
        "|---|---|" + "---|" * len(BENCHMARKS) + "---|",
    ]
    for r in rows:
        row = " | ".join(cell(r["scores"][b]) for b in BENCHMARKS)
        lines.append(f"| {r['axis']} | {r['value']} | {row} | {r['seconds']:.0f} s |")
    return rows, lines


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/toy-v2"))
    parser.add_argument("--seeds", type=seeds_arg, default=(0, 1, 2))
    parser.add_argument("--sweep-seeds", type=seeds_arg, default=(0, 1))
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--llm", default=None, help="OpenAI-compatible server URL for the sweep")
    parser.add_argument("--probe-images", type=count(), default=2000)
    parser.add_argument(
        "--quick", action="store_true", help="The demo's --quick world (a smoke run)"
    )
    parser.add_argument("--train-steps", type=count(), default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict = {"command": " ".join(["bench/bench_toy_v2.py", *map(str, vars(args).values())])}

    base = QUICK if args.quick else FULL
    sizes = replace(base, train_seeds=args.seeds, train_steps=args.train_steps or base.train_steps)
    summary = run_demo(args.out, sizes, progress=False)
    report["demo"] = summary
    lines = [
        (
            f"Toy CLIP {Path(summary['toy_clip']).name}: zero-shot top-1 on "
            f"{summary['zero_shot']['images']} single-object images: shape "
            f"{summary['zero_shot']['shape']:.1%}, colour {summary['zero_shot']['colour']:.1%} "
            f"(chance {summary['zero_shot']['chance']:.1%})."
        ),
        "",
    ]
    lines += variants_section(summary["scores"], args.seeds)

    world = args.out / "world" / sizes.world.key
    weights = Path(summary["toy_clip"])
    probes = linear_probe_ceiling(weights, world, sizes.world.seed, args.probe_images)
    report["probes"] = [asdict(p) for p in probes]
    free = summary["scores"][VARIANTS[0][0]]
    lines += [
        "",
        (
            "Localization: training-free (surgery) vs a linear probe on the frozen tokens "
            f"({args.probe_images} train images with masks):"
        ),
        "",
        "| benchmark | training-free | probe on `none` tokens | probe on `surgery` tokens |",
        "|---|---|---|---|",
    ]
    for target in ("toyshapes", "toyshapes-attr"):
        by_dense = {p.dense: p.miou for p in probes if p.target == target}
        lines.append(
            f"| {target} | {free[target][0]:.1f} | {by_dense['none']:.1f} | "
            f"{by_dense['surgery']:.1f} |"
        )

    first_runs = {
        label: (
            args.out / "runs" / f"{name}-seed{args.seeds[0]}"
            if len(args.seeds) > 1
            else args.out / "runs" / name
        )
        if name
        else None
        for label, name, _ in VARIANTS
    }
    from tagalign_toy.toy_clip import model_spec

    report["global_tasks"], global_lines = global_tasks(world, model_spec(weights), first_runs)
    lines += ["", *global_lines]

    short = {"toyshapes": "shapes", "toyshapes-attr": "attr-shapes", "toyshapes-pairs": "pairs"}
    spread = {
        f"{label.split(',', 1)[-1].split(' (')[0].strip()} [{short[bench]}]": summary["scores"][
            label
        ][bench]
        for bench in BENCHMARKS
        for label, name, _ in VARIANTS
        if name
    }
    save_picture(
        seed_spread_plot(spread, f"toy world v2, seeds {list(args.seeds)}: mIoU per seed"),
        args.out / "seed_spread.png",
    )
    if not args.no_sweep:
        pipeline = ToyPipeline(
            args.out, world, model_spec(weights), sizes.train_steps, sizes.train_batch
        )
        rows, sweep_lines = sweep(pipeline, args.out, args.sweep_seeds, args.llm)
        report["sweep"] = rows
        lines += ["", *sweep_lines]
        save_picture(
            seed_spread_plot(
                {f"{r['axis']}: {r['value']}": r["scores"]["toyshapes"] for r in rows},
                "sweep (TagAlign variant): shapes mIoU per seed",
            ),
            args.out / "sweep.png",
        )
    report["seconds"] = round(time.perf_counter() - started, 1)
    lines += ["", f"Total {report['seconds']:.0f} s."]
    report["markdown"] = "\n".join(lines)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + report["markdown"])


if __name__ == "__main__":
    main()
