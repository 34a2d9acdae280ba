"""`tagalign-demo`: the whole pipeline on the toy world, on a CPU, in minutes.

Stages: generate ToyShapes -> the toy CLIP (shipped weights of the default recipe, or pretrained
from scratch with `--retrain-clip`; cached) and its zero-shot accuracy on single objects ->
`tagparse run --backend spacy` -> `tagparse vocab` -> `tagalign-train --preset toy` for three
variants and each training seed -> `tagalign-eval` on the three benchmarks (shapes,
attribute-shapes, attribute pairs) for those and the training-free baseline -> one Markdown table
(mean ± sd over seeds), readable overlay grids, and tagparse's precision/recall against the
generator's known tags. Every tool runs through its real
CLI in a subprocess, exactly as a user would type it; the commands are printed.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click
import numpy as np
from PIL import Image
from tagalign_eval.errors import EvalError
from tagalign_eval.outputs import check_folder_target
from tagalign_train.config import NUMERIC_BOUNDS
from tagparse.fieldoptions import progress_option
from tagparse.numbers import count_range
from tagparse.usage import OneLineUsageErrors

from tagalign_toy.benchmark import ATTR_CLASS_FILE
from tagalign_toy.generator import (
    ATTR_MASK_DIR,
    PAIRS_VOC_NAME,
    VOC_NAME,
    WorldSpec,
    generate_world,
)
from tagalign_toy.scene import BACKGROUNDS
from tagalign_toy.stages import DemoError, ToyPipeline, protocol_flags, run_cli, tool
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
BENCHMARKS = ("toyshapes", "toyshapes-attr", "toyshapes-pairs")
#: The largest seed: the trainer's --seed range (numpy's).
SEED_MAX = int(NUMERIC_BOUNDS["seed"].high)
COLUMNS = {
    "toyshapes": "shapes mIoU",
    "toyshapes-attr": "attribute-shapes mIoU",
    "toyshapes-pairs": "attribute-pairs mIoU",
}


@dataclass(frozen=True)
class Sizes:
    """World size and training lengths; `--quick` is the reduced one, other options shrink it."""

    world: WorldSpec
    clip: PretrainRecipe
    train_steps: int
    train_batch: int
    vocab_objects: int = 40
    vocab_attributes: int = 30
    train_seeds: tuple[int, ...] = (0,)
    overlay_images: int = 4


FULL = Sizes(
    WorldSpec(seed=0, n_train=4000, n_val=200, shard_size=1000),
    clip=PretrainRecipe(),
    train_steps=300,
    train_batch=64,
)
QUICK = Sizes(
    WorldSpec(seed=0, n_train=600, n_val=40, shard_size=300, n_single=120, n_pairs=40),
    clip=PretrainRecipe(),
    train_steps=60,
    train_batch=32,
)


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


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def markdown_table(scores: dict[str, dict[str, list[float]]]) -> str:
    """Variants × benchmarks; mean ± sd when there is more than one seed."""
    shown = [b for b in BENCHMARKS if any(b in s for s in scores.values())]
    lines = [
        "| variant | " + " | ".join(COLUMNS[b] for b in shown) + " |",
        "|---|" + "---|" * len(shown),
    ]
    for label in (v[0] for v in VARIANTS if v[0] in scores):
        cells = []
        for b in shown:
            mean, sd = mean_sd(scores[label][b])
            cells.append(f"{mean:.1f} ± {sd:.1f}" if len(scores[label][b]) > 1 else f"{mean:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _run_name(name: str, seed: int, seeds: tuple[int, ...]) -> str:
    """A trained run's folder: the variant's name, with its seed when several seeds run."""
    return name if len(seeds) == 1 else f"{name}-seed{seed}"


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.split(" (")[0]).strip("-").lower()


def overlay_grids(pipeline: ToyPipeline, models: dict[str, Path | None], count: int) -> list[Path]:
    """`tagalign-eval predict` once per model on the first `count` val and pairs images, then one
    readable grid per image set (image | ground truth | each model), scaled 3×."""
    from tagalign_toy.figures import overlay_grid, save_picture

    names = ATTR_CLASS_FILE.read_text(encoding="utf-8").splitlines()
    sets = {
        title: pipeline.world / "VOCdevkit" / voc_name
        for voc_name, title in ((VOC_NAME, "attr"), (PAIRS_VOC_NAME, "pairs"))
    }
    images = {t: sorted((base / "JPEGImages").glob("*.jpg"))[:count] for t, base in sets.items()}
    folders = {}
    for label, run_dir in models.items():
        folders[label] = pipeline.out / "overlays" / _slug(label)
        run_cli(
            [
                tool("tagalign-eval"),
                "predict",
                *[str(p) for paths in images.values() for p in paths],
                "--classes",
                str(ATTR_CLASS_FILE),
                "--out",
                str(folders[label]),
                *pipeline.model_args(run_dir),
                *protocol_flags(),
                "--device",
                "cpu",
            ],
            pipeline.log(f"predict-{_slug(label)}"),
        )
    grids = []
    for title, base in sets.items():
        paths = images[title]
        predictions = {
            label: [np.array(Image.open(folder / f"{p.stem}_pred.png")) for p in paths]
            for label, folder in folders.items()
        }
        grid = overlay_grid(
            [np.array(Image.open(p).convert("RGB")) for p in paths],
            [np.array(Image.open(base / ATTR_MASK_DIR / f"{p.stem}.png")) for p in paths],
            predictions,
            names,
        )
        grids.append(save_picture(grid, pipeline.out / "overlays" / f"{title}_grid.png"))
    return grids


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
    runs. Every trained variant runs once per `sizes.train_seeds` seed (the world stays the same).
    """
    chosen = [v for v in VARIANTS if v[1] is None or variants is None or v[1] in variants]
    seeds = sizes.train_seeds
    from tagalign_toy.pretrain import toy_clip_weights
    from tagalign_toy.toy_clip import load_toy_clip, model_spec
    from tagalign_toy.zero_shot import load_single_split, zero_shot_accuracy

    out.mkdir(parents=True, exist_ok=True)
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
    zero_shot = zero_shot_accuracy(toy_clip, tokenizer, *load_single_split(world))
    click.echo(
        f"toy CLIP {weights.name}, zero-shot top-1 on {zero_shot.images} single-object images: "
        f"shape {zero_shot.shape:.1%}, colour {zero_shot.colour:.1%} "
        f"(a random guess: {zero_shot.chance:.1%})"
    )
    pipeline = ToyPipeline(out, world, model_spec(weights), sizes.train_steps, sizes.train_batch)
    lap("toy CLIP")

    click.echo("== 3/6 tags (tagparse run --backend spacy; cached per caption)")
    db = out / "tags.db"
    pipeline.parse(db, "spacy")
    pipeline.vocab(db, sizes.vocab_objects, sizes.vocab_attributes)
    gold_csv = out / "gold_factual.csv"
    write_factual_gold(world, gold_csv)
    from tagparse.score import score_db

    quality = score_db(gold_csv, db).as_dict()
    lap("tags")

    click.echo(f"== 4/6 training (tagalign-train --preset toy; seeds {list(seeds)})")
    runs: dict[str, list[Path | None]] = {}
    for label, name, flags in chosen:
        runs[label] = (
            [
                pipeline.train(out / "runs" / _run_name(name, seed, seeds), db, seed, flags)
                for seed in seeds
            ]
            if name
            else [None]
        )
    lap("training")

    click.echo(f"== 5/6 evaluation (tagalign-eval {', '.join(BENCHMARKS)})")
    scores: dict[str, dict[str, list[float]]] = {}
    for label, run_dirs in runs.items():
        scores[label] = {b: [] for b in BENCHMARKS}
        for run_dir in run_dirs:
            for benchmark, miou in pipeline.evaluate(run_dir, BENCHMARKS).items():
                scores[label][benchmark].append(miou)
    lap("evaluation")

    click.echo("== 6/6 overlays (attribute-shape classes, first seed's runs)")
    grids = overlay_grids(
        pipeline, {label: dirs[0] for label, dirs in runs.items()}, sizes.overlay_images
    )
    lap("overlays")

    table = markdown_table(scores)
    summary = {
        "world": world.name,
        "toy_clip": str(weights),
        "zero_shot": {
            "shape": zero_shot.shape,
            "colour": zero_shot.colour,
            "chance": zero_shot.chance,
            "images": zero_shot.images,
        },
        "train_seeds": list(seeds),
        "scores": scores,
        "table": table,
        "overlays": [str(g) for g in grids],
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
        f"overlays: {', '.join(str(g) for g in grids)}; total {summary['total_s']} s, "
        f"peak RSS {summary['peak_rss_mb']} MB"
    )
    return summary


def _chosen_variants(text: str | None) -> tuple[str, ...] | None:
    """`--variants a,b`: known names, each once (None: all of them)."""
    if text is None:
        return None
    known = [v[1] for v in VARIANTS if v[1]]
    names = tuple(v.strip() for v in text.split(","))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DemoError(
            f"--variants {text!r}: {unknown[0]!r} is not one; choose from {', '.join(known)}"
        )
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise DemoError(f"--variants {text!r}: {twice} is named twice; name each variant once")
    return names


def _train_seeds(text: str) -> tuple[int, ...]:
    """`--train-seeds 0,1,2`: integers in numpy's seed range, each once (a seed given twice
    would count one run twice in the mean ± sd)."""
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise DemoError(
            f"--train-seeds {text!r}: give integers separated by commas, e.g. 0,1,2"
        ) from None
    bad = next((s for s in seeds if not 0 <= s <= SEED_MAX), None)
    if bad is not None:
        raise DemoError(f"--train-seeds {text!r}: {bad} is outside 0..{SEED_MAX}")
    twice = next((s for s in seeds if seeds.count(s) > 1), None)
    if twice is not None:
        raise DemoError(f"--train-seeds {text!r}: seed {twice} is given twice; give each once")
    return seeds


class _Command(OneLineUsageErrors, click.Command):
    """A usage mistake (`--n-train -3`, a typo in a flag) is the project's one `error:` line."""


@click.command(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--out",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output folder (world, caches, runs, results, overlays).",
)
@click.option("--quick", is_flag=True, help="A reduced world and fewer steps (about 3 minutes).")
@click.option(
    "--seed",
    type=count_range(0, SEED_MAX),
    default=0,
    show_default=True,
    help="World seed (and training seed).",
)
@click.option(
    "--train-seeds",
    default=None,
    metavar="N,...",
    help="Train every variant once per seed and report mean ± sd (default: --seed only).",
)
@click.option(
    "--train-steps",
    type=count_range(1),
    default=None,
    help="Projector steps per variant (default: by size).",
)
@click.option(
    "--n-train", type=count_range(1), default=None, help="Train images/captions (default: by size)."
)
@click.option("--n-val", type=count_range(1), default=None, help="Val images (default: by size).")
@click.option(
    "--clip-steps",
    type=count_range(1),
    default=None,
    help="Toy-CLIP pretraining steps (default: the shipped recipe's; others train now).",
)
@click.option(
    "--retrain-clip",
    is_flag=True,
    help="Pretrain the toy CLIP here instead of using the shipped weights (~20 min on one thread).",
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
    "--threads",
    type=count_range(1, 1024),
    default=2,
    show_default=True,
    help="Torch threads for toy-CLIP pretraining.",
)
@progress_option
def main(
    out: str,
    quick: bool,
    seed: int,
    train_seeds: str | None,
    train_steps: int | None,
    n_train: int | None,
    n_val: int | None,
    clip_steps: int | None,
    retrain_clip: bool,
    variants: str | None,
    threads: int,
    progress: bool,
) -> None:
    """Run the whole TagAlign pipeline on the ToyShapes world and print the ablation table."""
    base = QUICK if quick else FULL
    try:
        wanted = _chosen_variants(variants)
        seeds = _train_seeds(train_seeds) if train_seeds is not None else (seed,)
        if n_train is not None and n_train < base.train_batch:
            raise DemoError(
                f"--n-train {n_train}: fewer images than one training batch "
                f"({base.train_batch}); pass --n-train {base.train_batch} or more"
            )
        check_folder_target(out, "--out")
    except (DemoError, EvalError) as exc:
        click.echo(f"error: {exc}", err=True)
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
    sizes = replace(
        base,
        world=world,
        train_steps=train_steps or base.train_steps,
        clip=clip,
        train_seeds=seeds,
    )
    try:
        run_demo(
            Path(out),
            sizes,
            progress=progress,
            threads=threads,
            variants=wanted,
            retrain_clip=retrain_clip,
        )
    except DemoError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
