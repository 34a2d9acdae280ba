"""Pretrain the toy CLIP of the default recipe and write the weights that tagalign-toy ships.

Trains `PretrainRecipe()` from scratch on the generator's `pretrain` split (sibling groups, see
`tagalign_toy.generator.make_sibling_group`), records the learning curve (zero-shot shape
accuracy on the default world's val images every `--eval-every` steps), and writes:

- `<cache>/toy-clip-DIGEST/`: the fp32 weights as an open_clip `local-dir:` folder (what
  `tagalign-demo` would train);
- `packages/tagalign-toy/src/tagalign_toy/weights/<same name>/`: the fp16 copy shipped;
- `bench/results/toy_clip_curve-DIGEST.json`: the learning curve.

    .venv/bin/python scripts/pretrain_toy_clip.py --threads 1 --workers 2

About 50 minutes at 2 threads on the 2-core reference machine (see bench/RESULTS.md, issue 7).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
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
from tagalign_toy.zero_shot import load_val_images, zero_shot_shape_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("demo-out/cache"))
    parser.add_argument("--world-root", type=Path, default=Path("demo-out/world"))
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="Override a PretrainRecipe field (e.g. --set siblings=8); the weights are "
        "still written under the recipe's own digest",
    )
    args = parser.parse_args()

    defaults = DEFAULT_RECIPE
    overrides = {}
    for item in args.set:
        field, _, value = item.partition("=")
        if not hasattr(defaults, field):
            parser.error(f"--set {item}: PretrainRecipe has no field {field!r}")
        overrides[field] = type(getattr(defaults, field))(value)
    recipe = replace(defaults, **overrides)
    torch.set_num_threads(args.threads)
    world = generate_world(args.world_root, WorldSpec(), workers=args.workers)
    val_images, present = load_val_images(world)
    images, captions = pretrain_pairs(recipe, workers=args.workers)
    curve: list[dict] = []
    start = time.perf_counter()

    register_toy_clip()
    tokenizer = open_clip.get_tokenizer(TOY_CLIP_NAME)

    def on_eval(step: int, model) -> None:
        acc, chance = zero_shot_shape_accuracy(model, tokenizer, val_images, present)
        curve.append(
            {
                "step": step,
                "zero_shot": acc,
                "chance": chance,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(curve[-1]), flush=True)

    state = train_toy_clip(images, captions, recipe, on_eval=on_eval, eval_every=args.eval_every)
    save_toy_clip(state, args.cache / recipe.dirname)
    save_toy_clip(state, SHIPPED_DIR / recipe.dirname, torch.float16)
    args.results.mkdir(parents=True, exist_ok=True)
    curve_file = args.results / f"toy_clip_curve-{recipe.digest}.json"
    curve_file.write_text(
        json.dumps({"recipe": recipe.__dict__, "threads": args.threads, "curve": curve}, indent=2)
        + "\n"
    )
    print(f"weights: {args.cache / recipe.dirname}; curve: {curve_file}")


if __name__ == "__main__":
    main()
