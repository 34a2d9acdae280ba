"""Pretrain the toy CLIP and write the weights that tagalign-toy ships, with its learning curve.

Trains `PretrainRecipe()` (or one with `--set FIELD=VALUE` overrides) from scratch on the
generator's `pretrain` split and, every `--eval-every` steps, measures the zero-shot shape and
colour top-1 on the default world's held-out `single` split (the split the shipped-weights test
uses). With `--set decay=0` the learning rate is constant after warmup, so the weights after N
steps are exactly those of the same recipe with `steps=N`: each evaluation point is then saved as
that recipe's own folder, and any point of the curve can be shipped under its digest.

- `<cache>/toy-clip-DIGEST/`: fp32 weights (and, with decay 0, of each evaluated step);
- `bench/results/toy_clip_curve-DIGEST.json`: the curve (digest of the full-length recipe);
- with `--ship`, the final step's fp16 copy into `packages/tagalign-toy/.../weights/`.

    .venv/bin/python scripts/pretrain_toy_clip.py --threads 2 --workers 2 --ship

See bench/RESULTS.md, issue 14, for the measured curve and its run time.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import open_clip
import torch
from tagalign_toy.generator import WorldSpec, generate_world
from tagalign_toy.pretrain import pretrain_pairs, train_toy_clip
from tagalign_toy.toy_clip import (
    DEFAULT_RECIPE,
    SHIPPED_DIR,
    TOY_CLIP_NAME,
    register_toy_clip,
    save_toy_clip,
)
from tagalign_toy.zero_shot import load_single_split, zero_shot_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("demo-out/cache"))
    parser.add_argument("--world-root", type=Path, default=Path("demo-out/world"))
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--ship", action="store_true", help="Write the final fp16 weights.")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="Override a PretrainRecipe field (e.g. --set lr=0.002); the weights are "
        "still written under the recipe's own digest",
    )
    args = parser.parse_args()

    overrides = {}
    for item in args.set:
        field, _, value = item.partition("=")
        if not hasattr(DEFAULT_RECIPE, field):
            parser.error(f"--set {item}: PretrainRecipe has no field {field!r}")
        overrides[field] = type(getattr(DEFAULT_RECIPE, field))(value)
    recipe = replace(DEFAULT_RECIPE, **overrides)
    torch.set_num_threads(args.threads)
    world = generate_world(args.world_root, WorldSpec(), workers=args.workers)
    single = load_single_split(world)
    images, captions = pretrain_pairs(recipe, workers=args.workers)
    curve: list[dict] = []
    start = time.perf_counter()
    register_toy_clip()
    tokenizer = open_clip.get_tokenizer(TOY_CLIP_NAME)

    def on_eval(step: int, model) -> None:
        result = zero_shot_accuracy(model, tokenizer, *single)
        point = {"step": step, "shape": result.shape, "colour": result.colour}
        if recipe.decay == 0:  # this point is the recipe with steps=step: keep it
            at_step = replace(recipe, steps=step)
            save_toy_clip(model.state_dict(), args.cache / at_step.dirname)
            point["digest"] = at_step.digest
        curve.append(point | {"seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(curve[-1]), flush=True)
        args.results.mkdir(parents=True, exist_ok=True)
        curve_file = args.results / f"toy_clip_curve-{recipe.digest}.json"
        record = {
            "recipe": asdict(recipe),
            "chance": result.chance,
            "threads": args.threads,
            "curve": curve,
        }
        curve_file.write_text(json.dumps(record, indent=2) + "\n")

    state = train_toy_clip(images, captions, recipe, on_eval=on_eval, eval_every=args.eval_every)
    save_toy_clip(state, args.cache / recipe.dirname)
    if args.ship:
        save_toy_clip(state, SHIPPED_DIR / recipe.dirname, torch.float16)
    print(f"weights: {args.cache / recipe.dirname}")


if __name__ == "__main__":
    main()
