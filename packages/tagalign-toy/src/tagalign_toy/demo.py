"""`tagalign-demo`: the whole pipeline on the toy world, on a CPU, in minutes.

Stages: generate ToyShapes -> the toy CLIP (shipped weights of the default recipe, or pretrained
from scratch with `--retrain-clip`; cached) -> `tagparse run --backend spacy` ->
`tagparse vocab` -> `tagalign-train --preset toy` for three variants -> `tagalign-eval` on both
class lists for those and the training-free baseline -> one Markdown table, overlay pictures, and
tagparse's precision/recall against the generator's known tags. Every tool runs through its real
CLI in a subprocess, exactly as a user would type it; the commands are printed.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click

from tagalign_toy.benchmark import ATTR_CLASS_FILE, TOY_PROTOCOL
from tagalign_toy.generator import BACKGROUNDS, IMAGE_SIZE, WorldSpec, generate_world
from tagalign_toy.toy_clip import PretrainRecipe

#: (label, run name, tagalign-train flags); None = the training-free baseline.
VARIANTS: tuple[tuple[str, str | None, list[str]], ...] = (
    ("training-free (surgery on the toy CLIP)", None, []),
    ("projector, contrastive loss only", "itc", ["--tag-weight", "0"]),
    ("projector, contrastive + object tags", "itc-obj", ["--tag-kinds", "objects"]),
    (
        "projector, contrastive + object + attribute tags (TagAlign)",
        "itc-obj-attr",
        ["--tag-kinds", "both"],
    ),
)
BENCHMARKS = ("toyshapes", "toyshapes-attr")


class DemoError(Exception):
    """A stage failed; the message names the command and where its log is."""


@dataclass(frozen=True)
class Sizes:
    """World size and training lengths; `--quick` is the reduced one, other options shrink it."""

    world: WorldSpec
    clip: PretrainRecipe
    train_steps: int
    train_batch: int
    vocab_objects: int = 40
    vocab_attributes: int = 30


FULL = Sizes(
    WorldSpec(seed=0, n_train=4000, n_val=200, shard_size=1000),
    clip=PretrainRecipe(),
    train_steps=300,
    train_batch=64,
)
QUICK = Sizes(
    WorldSpec(seed=0, n_train=600, n_val=40, shard_size=300),
    clip=PretrainRecipe(),
    train_steps=60,
    train_batch=32,
)


def _bin(name: str) -> str:
    """The console script installed next to this Python (the venv's), else from PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def run_cli(args: list[str], log: Path) -> None:
    """Run one tool as a user would; progress bars go to the terminal, a copy of stdout to `log`."""
    click.echo("$ " + " ".join(args))
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=False)
        f.write(proc.stdout)
    click.echo(proc.stdout.rstrip())
    if proc.returncode != 0:
        raise DemoError(f"`{args[0]} {args[1]}` failed with exit code {proc.returncode}; see {log}")


def write_factual_gold(world: Path, path: Path) -> int:
    """The generator's caption tags as a FACTUAL-style gold CSV, so `tagparse score` can grade the
    parser. Attributes hang on the caption's first shape (the scorer reads only the tag sets)."""
    rows = 0
    with (
        open(world / "train" / "gold.jsonl", encoding="utf-8") as src,
        open(path, "w", newline="", encoding="utf-8") as dst,
    ):
        writer = csv.writer(dst)
        writer.writerow(["caption", "scene_graph"])
        for line in src:
            record = json.loads(line)
            shapes = [o for o in record["objects"] if o not in BACKGROUNDS]
            graph = [f"( {o} )" for o in record["objects"]]
            graph += [f"( {shapes[0]} , is , {a} )" for a in record["attributes"]]
            writer.writerow([record["caption"], " , ".join(graph)])
            rows += 1
    return rows


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def markdown_table(scores: dict[str, dict[str, float]]) -> str:
    lines = ["| variant | shapes mIoU | attribute-shapes mIoU |", "|---|---|---|"]
    for label in (v[0] for v in VARIANTS if v[0] in scores):
        s = scores[label]
        lines.append(f"| {label} | {s['toyshapes']:.1f} | {s['toyshapes-attr']:.1f} |")
    return "\n".join(lines)


def run_demo(
    out: Path,
    sizes: Sizes,
    progress: bool = True,
    threads: int = 2,
    variants: tuple[str, ...] | None = None,
    retrain_clip: bool = False,
) -> dict:
    """All stages; returns the summary also written to `out/summary.json`.

    `variants` names the trained runs to include (None = all); the training-free baseline always
    runs.
    """
    chosen = [v for v in VARIANTS if v[1] is None or variants is None or v[1] in variants]
    from tagalign_toy.pretrain import toy_clip_weights
    from tagalign_toy.toy_clip import load_toy_clip, model_spec
    from tagalign_toy.zero_shot import load_val_images, zero_shot_shape_accuracy

    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 1)
        clock = now
        click.echo(f"[{stage}: {timings[stage]} s]")

    click.echo("== 1/6 world")
    world = generate_world(
        out / "world", sizes.world, workers=min(2, os.cpu_count() or 1), progress=progress
    )
    shards = sorted(str(p) for p in (world / "train").glob("*.tar"))
    lap("world")

    click.echo("== 2/6 toy CLIP (contrastive pretraining from scratch: shipped or cached weights)")
    weights = toy_clip_weights(
        out / "cache",
        sizes.clip,
        retrain=retrain_clip,
        progress=progress,
        threads=threads,
        workers=min(2, os.cpu_count() or 1),
    )
    toy_clip, _, tokenizer = load_toy_clip(weights)
    zero_shot, chance = zero_shot_shape_accuracy(toy_clip, tokenizer, *load_val_images(world))
    toy_model = model_spec(weights)
    click.echo(
        f"toy CLIP {weights.name}: the top-1 shape prompt names a shape in the val image "
        f"{zero_shot:.1%} of the time (a random guess: {chance:.1%})"
    )
    lap("toy CLIP")

    click.echo("== 3/6 tags (tagparse run --backend spacy; cached per caption)")
    db = out / "tags.db"
    run_cli(
        [
            _bin("tagparse"),
            "run",
            "--backend",
            "spacy",
            "--db",
            str(db),
            *[a for s in shards for a in ("--input", s)],
        ],
        logs / "tagparse-run.log",
    )
    run_cli(
        [
            _bin("tagparse"),
            "vocab",
            "--db",
            str(db),
            "--objects",
            str(sizes.vocab_objects),
            "--attributes",
            str(sizes.vocab_attributes),
            "--min-count",
            "3",
        ],
        logs / "tagparse-vocab.log",
    )
    gold_csv = out / "gold_factual.csv"
    write_factual_gold(world, gold_csv)
    from tagparse.score import score_db

    quality = score_db(gold_csv, db).as_dict()
    lap("tags")

    click.echo("== 4/6 training (tagalign-train --preset toy)")
    common = [
        "--preset",
        "toy",
        "--model",
        toy_model,
        "--image-size",
        str(IMAGE_SIZE),
        "--labels",
        str(db),
        "--steps",
        str(sizes.train_steps),
        "--batch-size",
        str(sizes.train_batch),
        "--seed",
        str(sizes.world.seed),
        "--cache-features",
        str(out / "cache" / "features"),
        "--text-cache",
        str(out / "cache" / "text"),
        "--workers",
        "0",
        *[a for s in shards for a in ("--data", s)],
    ]
    runs = out / "runs"
    for _label, name, flags in chosen:
        if name is None:
            continue
        run_dir = runs / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_cli(
            [_bin("tagalign-train"), *common, "--out", str(run_dir), *flags],
            logs / f"train-{name}.log",
        )
    lap("training")

    click.echo("== 5/6 evaluation (tagalign-eval toyshapes, toyshapes-attr)")
    protocol = [a for k, v in TOY_PROTOCOL.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    scores: dict[str, dict[str, float]] = {}
    for label, name, _ in chosen:
        model = (
            ["--baseline", "surgery", "--model", toy_model]
            if name is None
            else ["--checkpoint", str(runs / name)]
        )
        result_json = out / "results" / f"{name or 'training-free'}.json"
        result_json.parent.mkdir(exist_ok=True)
        run_cli(
            [
                _bin("tagalign-eval"),
                "all",
                "--benchmarks",
                ",".join(BENCHMARKS),
                "--data-root",
                str(world),
                *model,
                *protocol,
                "--device",
                "cpu",
                "--workers",
                "0",
                "--out",
                str(result_json),
            ],
            logs / f"eval-{name or 'training-free'}.log",
        )
        results = json.loads(result_json.read_text())["results"]
        scores[label] = {r["benchmark"]: float(r["metrics"]["mIoU"]) for r in results}
    lap("evaluation")

    click.echo("== 6/6 overlays (attribute-shape classes)")
    best_label, best_name, _ = max(
        (v for v in chosen if v[1]), key=lambda v: scores[v[0]]["toyshapes"]
    )
    val_images = sorted((world / "VOCdevkit" / "ToyShapes" / "JPEGImages").glob("*.jpg"))[:4]
    for name, model in (
        (best_name, ["--checkpoint", str(runs / best_name)]),
        (
            "training-free",
            ["--baseline", "surgery", "--model", toy_model],
        ),
    ):
        run_cli(
            [
                _bin("tagalign-eval"),
                "predict",
                *map(str, val_images),
                "--classes",
                str(ATTR_CLASS_FILE),
                "--out",
                str(out / "overlays" / name),
                *model,
                *protocol,
                "--device",
                "cpu",
            ],
            logs / f"predict-{name}.log",
        )
    lap("overlays")

    table = markdown_table(scores)
    summary = {
        "world": world.name,
        "toy_clip": str(weights),
        "zero_shot_shape_accuracy": zero_shot,
        "zero_shot_chance": chance,
        "scores": scores,
        "table": table,
        "best": best_label,
        "tagparse_quality": quality,
        "timings_s": timings,
        "total_s": round(sum(timings.values()), 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    click.echo("\n" + table + "\n")
    q = quality
    click.echo(
        f"tagparse (spaCy) vs the generator's tags on {q['rows']} captions: "
        f"objects P {q['objects']['precision']:.2f} R {q['objects']['recall']:.2f} "
        f"F1 {q['objects']['f1']:.2f}; attributes P {q['attributes']['precision']:.2f} "
        f"R {q['attributes']['recall']:.2f} F1 {q['attributes']['f1']:.2f}"
    )
    click.echo(
        f"overlays: {out / 'overlays'}; total {summary['total_s']} s, "
        f"peak RSS {summary['peak_rss_mb']} MB"
    )
    return summary


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--out",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output folder (world, caches, runs, results, overlays).",
)
@click.option("--quick", is_flag=True, help="A reduced world and fewer steps (about 3 minutes).")
@click.option("--seed", default=0, show_default=True, help="World and training seed.")
@click.option(
    "--train-steps", type=int, default=None, help="Projector steps per variant (default: by size)."
)
@click.option("--n-train", type=int, default=None, help="Train images/captions (default: by size).")
@click.option("--n-val", type=int, default=None, help="Val images (default: by size).")
@click.option(
    "--clip-steps",
    type=int,
    default=None,
    help="Toy-CLIP pretraining steps (default: the shipped recipe's; others train now).",
)
@click.option(
    "--retrain-clip",
    is_flag=True,
    help="Pretrain the toy CLIP here instead of using the shipped weights (~50 min at 2 threads).",
)
@click.option(
    "--variants",
    default=None,
    metavar="RUN,...",
    help="Trained variants to run, from: "
    + ", ".join(v[1] for v in VARIANTS if v[1])
    + " (default: all; training-free always runs).",
)
@click.option(
    "--threads", default=2, show_default=True, help="Torch threads for toy-CLIP pretraining."
)
@click.option("--no-progress", is_flag=True)
def main(
    out: str,
    quick: bool,
    seed: int,
    train_steps: int | None,
    n_train: int | None,
    n_val: int | None,
    clip_steps: int | None,
    retrain_clip: bool,
    variants: str | None,
    threads: int,
    no_progress: bool,
) -> None:
    """Run the whole TagAlign pipeline on the ToyShapes world and print the ablation table."""
    base = QUICK if quick else FULL
    known = [v[1] for v in VARIANTS if v[1]]
    wanted = tuple(v.strip() for v in variants.split(",")) if variants else None
    if wanted is not None and set(wanted) - set(known):
        click.echo(f"error: --variants {variants!r}: choose from {', '.join(known)}", err=True)
        sys.exit(2)
    n_train = n_train or base.world.n_train
    world = replace(
        base.world,
        seed=seed,
        n_train=n_train,
        n_val=n_val or base.world.n_val,
        shard_size=min(base.world.shard_size, n_train),
    )
    clip = (
        replace(base.clip, steps=clip_steps, warmup=min(base.clip.warmup, clip_steps // 10))
        if clip_steps
        else base.clip
    )
    sizes = replace(base, world=world, train_steps=train_steps or base.train_steps, clip=clip)
    try:
        run_demo(
            Path(out),
            sizes,
            progress=not no_progress,
            threads=threads,
            variants=wanted,
            retrain_clip=retrain_clip,
        )
    except DemoError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
