"""Which whole-image embedding should `classify`/`retrieval` use for a checkpoint? (issue 22, 5)

Toy world v2 found the projected-patch mean (training's embedding, the `--pooling` default) a worse
whole-image embedding than the toy CLIP's own. This measures every `--pooling` of tagalign-eval
on the demo's trained variants over training seeds, beside the frozen toy CLIP's own embedding
(the training-free path's, its class token through its own head):

- `patch-mean`: the mean of the projected patches (what the tag and contrastive losses train),
- `class-token`: the frozen CLIP's class token through the checkpoint's trained head,
- `attention`: projected patches weighted by the softmax of their cosine with CLIP's embedding.

Tasks: zero-shot shape classification of the world's `single` split (top-1, 6 classes) and
retrieval on the val images' captions (recall@1 both ways). The runs come from the demo itself
(`run_demo`, default sizes, the trained variants over `--seeds`), so a re-run with the same
`--out` reuses the world, the parses and the trained runs.

    .venv/bin/python bench/bench_pooling.py --out /tmp/bench-pooling [--seeds 0,1,2] [--quick]

Writes OUT/pooling.json and OUT/pooling.png (a dot per seed, mean ± sd per variant and pooling);
prints the Markdown table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from benchargs import OneLineParser
from tagalign_toy.demo import FULL, QUICK, VARIANTS, mean_sd, run_demo
from tagalign_toy.figures import save_picture, seed_spread_plot
from toy_tables import seeds_arg, whole_image_metrics

POOLINGS = ("patch-mean", "class-token", "attention")
METRICS = ("top1", "i2t_R@1", "t2i_R@1")
CLIP_OWN = "toy CLIP, its own embedding (training-free)"


def measure(world: Path, model: dict) -> dict[str, float]:
    """Top-1 on the single-object split and recall@1 both ways on the val captions."""
    return {k: v for k, v in whole_image_metrics(world, model).items() if k in METRICS}


def main() -> None:
    ap = OneLineParser(prog="bench_pooling.py", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-pooling"))
    ap.add_argument("--seeds", type=seeds_arg, default=(0, 1, 2))
    ap.add_argument("--quick", action="store_true", help="the demo's quick sizes")
    args = ap.parse_args()
    sizes = replace(QUICK if args.quick else FULL, train_seeds=args.seeds)
    trained = [(label, name) for label, name, _ in VARIANTS if name]
    summary = run_demo(args.out, sizes, progress=False, variants=tuple(n for _, n in trained))
    from tagalign_toy.toy_clip import model_spec

    world = args.out / "world" / sizes.world.key
    toy = {"clip_model": model_spec(Path(summary["toy_clip"])), "pretrained": None}
    rows: dict[str, dict[str, list[float]]] = {
        CLIP_OWN: {m: [v] for m, v in measure(world, toy).items()}
    }
    for label, name in trained:
        for pooling in POOLINGS:
            row = rows.setdefault(
                f"{label.split(',')[0]} {name}: {pooling}", {m: [] for m in METRICS}
            )
            for seed in args.seeds:
                run = args.out / "runs" / (name if len(args.seeds) == 1 else f"{name}-seed{seed}")
                for metric, value in measure(
                    world, {"checkpoint": run, "pooling": pooling}
                ).items():
                    row[metric].append(value)
            print(f"[{name} {pooling}: top-1 {mean_sd(row['top1'])[0]:.1f}]", flush=True)
    lines = ["| model: pooling | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for label, row in rows.items():
        cells = []
        for metric in METRICS:
            mean, sd = mean_sd(row[metric])
            cells.append(f"{mean:.1f} ± {sd:.1f} ({', '.join(f'{v:.1f}' for v in row[metric])})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (args.out / "pooling.json").write_text(
        json.dumps({"seeds": list(args.seeds), "quick": args.quick, "rows": rows}, indent=2) + "\n"
    )
    picture = seed_spread_plot(
        {label: row["top1"] for label, row in rows.items()},
        "shape top-1 on the single-object split, per pooling",
        unit="top-1 %",
    )
    save_picture(picture, args.out / "pooling.png")
    print(f"\nseeds {list(args.seeds)}, {'quick' if args.quick else 'full'} sizes\n\n{table}")


if __name__ == "__main__":
    main()
