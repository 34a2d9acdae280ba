"""When do tags help? The paper's claims as curves over caption quality (issue 22).

For each caption-noise level of the toy world (`caption_noise.LEVELS`; the images are the same at
every level, only the captions change), every stage in this one process with the CLIs' own flags
(`tagalign_toy.in_process`: a fresh interpreter per stage cost more than the stage), the LLM
parses through the real `tagparse run`:

1. the variants over `--seeds` (training-free, contrastive only, + object tags, + object &
   attribute tags; spaCy tags, K 40/30), mean ± sd and per seed, and the claim-1/claim-3 gains
   per seed;
2. the tag source at `--source-levels`: the generator's gold (image truth and caption truth),
   spaCy, NLTK and LLMs through `tagparse run --backend vllm` on vLLM's CPU build (SmolLM2-135M,
   Gemma 3 270M; parsed once, tags.db cached in OUT, parse time reported; skipped with a line
   when the vLLM venv is missing), each scored against the caption's gold tags, then trained on;
3. the sweep over K and the tag loss at `--sweep-level`, over the same seeds;
4. claim-3 diagnosis: does the attribute part of the tag loss fall (metrics.jsonl), do the
   projected patch features encode colour (a per-patch linear colour probe on each variant's
   features), and the pairs metric at attribute-tag weight 0.5×, 1×, 2×, 4× (`--sweep-level`).

    .venv/bin/python bench/bench_toy_claims.py --out /tmp/toy-claims          # the full sweep
    .venv/bin/python bench/bench_toy_claims.py --quick --out /tmp/toy-claims-q

Writes OUT/claims.json, OUT/claims.md and PNG plots in OUT; re-runs reuse worlds and parses.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchargs import OneLineParser, count
from tagalign_toy.caption_noise import LEVELS, visual_word_share
from tagalign_toy.demo import BENCHMARKS, COLUMNS, FULL, QUICK, VARIANTS, write_factual_gold
from tagalign_toy.figures import save_picture, seed_spread_plot
from tagalign_toy.generator import generate_world, make_sample
from tagalign_toy.gold_backend import NAME as GOLD
from tagalign_toy.gold_backend import register as register_gold
from tagalign_toy.in_process import InProcessPipeline
from tagalign_toy.stages import ToyPipeline
from toy_tables import TAGALIGN, Cell, cell, gains, seeds_arg, train_cell, variants_section

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tagparse" / "llm"))
import vllm_env  # test support: the cached vLLM CPU venv and the converted GGUF models

FACTUAL = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "factual" / "test.csv"
LLMS = {"smollm2": vllm_env.smollm2_folder, "gemma3": vllm_env.gemma3_folder}
K_DEFAULT = (40, 30)


@dataclass(frozen=True)
class SweepGrid:
    """The settings the sweep varies, one at a time from the TagAlign variant."""

    k_cells: tuple[tuple[str, int, int], ...]  # (axis, object K, attribute K)
    losses: tuple[str, ...]
    attribute_weights: tuple[float, ...]  # 1.0 is the TagAlign variant itself


SWEEP = SweepGrid(
    k_cells=(
        ("object K", 6, 30),
        ("object K", 12, 30),
        ("attribute K", 40, 4),
        ("attribute K", 40, 10),
    ),
    losses=("bce", "balanced"),
    attribute_weights=(0.5, 2.0, 4.0),
)
#: One value per axis: the quick and tiny forms check that every row kind is written.
ONE_PER_AXIS = SweepGrid(k_cells=(("object K", 6, 30),), losses=("bce",), attribute_weights=(2.0,))
SOURCES = ("gold-image", "gold-caption", "spacy", "nltk", *LLMS)
#: What each size sets where the command line does not. `--quick` checks the script (the demo's
#: quick world with half its val/pairs images and steps, 2 seeds, one LLM); `--tiny` is a test
#: size (tests/e2e/test_bench_toy_claims.py), not a measurement. Both sweep one value per axis.
SIZES: dict[str, dict] = {
    "full": {"probe_images": 2000, "probe_steps": 400, "seeds": (0, 1, 2), "sources": SOURCES},
    "quick": {
        "n_val": 20,
        "n_pairs": 20,
        "train_steps": 30,
        "probe_images": 400,
        "probe_steps": 100,
        "seeds": (0, 1),
        "sources": ("gold-image", "spacy", "smollm2"),
    },
    "tiny": {
        "n_train": 32,
        "n_val": 4,
        "n_single": 6,
        "n_pairs": 4,
        "train_steps": 2,
        "probe_images": 8,
        "probe_steps": 2,
        "seeds": (0, 1),
        "sources": ("gold-image", "spacy"),
    },
}


def names_arg(known: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(n for n in text.split(",") if n)
        bad = [n for n in names if n not in known]
        if bad:
            raise argparse.ArgumentTypeError(f"{bad[0]!r} is not one of {', '.join(known)}")
        return names

    return parse


def caption_statistics(seed: int, n: int = 400) -> list[str]:
    """Each level's measured caption quality beside FACTUAL's human captions (when readable)."""
    lines = [
        "| captions | words | visual share | colour unsaid | wrong colour | ghost shape |",
        "|---|---|---|---|---|---|",
    ]
    for name, level in LEVELS.items():
        scenes = [make_sample(seed, "train", i, level)[0] for i in range(n)]
        mentions = [m for s in scenes for m in s.mentions]
        said = [m for m in mentions if m["said"]]
        words = sum(len(s.caption.split()) for s in scenes) / n
        share = sum(visual_word_share(s.caption) for s in scenes) / n
        missing = sum(m["said"] is None for m in mentions) / len(mentions)
        wrong = sum(m["said"] != m["colour"] for m in said) / len(said)
        ghost = sum(bool(s.extra) for s in scenes) / n
        lines.append(
            f"| toy {name} | {words:.1f} | {share:.0%} | {missing:.0%} | {wrong:.0%} | "
            f"{ghost:.0%} |"
        )
    if FACTUAL.exists():
        with FACTUAL.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        word = re.compile(r"[a-z]+")
        shares, lengths = [], []
        for r in rows:
            caption = word.findall(r["caption"].lower())
            graph = set(word.findall(r["scene_graph"].lower())) - {"is"}
            if caption:
                lengths.append(len(caption))
                shares.append(sum(w in graph for w in caption) / len(caption))
        lines.append(
            f"| FACTUAL test (words in the scene graph) | {sum(lengths) / len(lengths):.1f} | "
            f"{sum(shares) / len(shares):.0%} | — | — | — |"
        )
    else:
        lines.append(f"| FACTUAL | not found at {FACTUAL} | | | | |")
    return lines


def level_variants(pipeline: ToyPipeline, seeds: tuple[int, ...]) -> tuple[dict, dict, Path]:
    """spaCy tags, vocab 40/30, every variant over the seeds; (scores, cells, labels db)."""
    db = pipeline.out / "tags-spacy.db"
    pipeline.parse(db, "spacy")
    pipeline.vocab(db, *K_DEFAULT)
    scores: dict[str, dict[str, list[float]]] = {}
    cells: dict[str, Cell] = {}
    for label, name, flags in VARIANTS:
        if name is None:
            scores[label] = {b: [v] for b, v in pipeline.evaluate(None, BENCHMARKS).items()}
            continue
        cells[name] = train_cell(pipeline, name, db, seeds, flags)
        scores[label] = cells[name].scores
    return scores, cells, db


def parse_source(pipeline: ToyPipeline, source: str, llm_python: Path | None) -> Path | str:
    """The tags.db of one source (parsed once, cached), or why it was skipped."""
    db = pipeline.out / f"tags-{source}.db"
    gold = pipeline.world / "train" / "gold.jsonl"
    if source.startswith("gold-"):
        from tagparse.pipeline import run_parse

        register_gold()
        options = {"gold": str(gold), "truth": source.removeprefix("gold-")}
        run_parse(db, pipeline.shards, GOLD, options, progress=False)
    elif source in LLMS:
        if llm_python is None:
            return "the vLLM CPU venv is not available"
        model = LLMS[source](llm_python, vllm_env.build_log())
        env = {"TAGPARSE_VLLM_PYTHON": str(llm_python), "VLLM_CPU_KVCACHE_SPACE": "1"}
        pipeline.parse(db, "vllm", ["--model", str(model), "--no-progress"], env)
    else:
        pipeline.parse(db, source)
    return db


def tag_sources(
    pipeline: ToyPipeline, seeds: tuple[int, ...], sources: tuple[str, ...], spacy: Cell
) -> tuple[list[dict], list[str]]:
    """TagAlign variant trained on each source's tags; quality vs the caption's gold tags."""
    from tagparse.score import score_db

    gold_csv = pipeline.out / "gold_factual.csv"
    write_factual_gold(pipeline.world, gold_csv)
    llm_python = _vllm_python() if any(s in LLMS for s in sources) else None
    rows, skipped = [], []
    for source in sources:
        start = time.perf_counter()
        db = parse_source(pipeline, source, llm_python)
        if isinstance(db, str):
            skipped.append(f"tag source {source} skipped: {db}")
            print(skipped[-1], flush=True)
            continue
        parse_s = round(time.perf_counter() - start, 1)
        quality = score_db(gold_csv, db).as_dict()
        if source == "spacy":
            result = spacy
        else:
            pipeline.vocab(db, *K_DEFAULT)
            result = train_cell(pipeline, f"src-{source}", db, seeds, TAGALIGN[1])
        rows.append(
            {"source": source, "parse_s": parse_s, "quality": quality, "scores": result.scores}
        )
    head = "| tag source | obj F1 | attr F1 | parse time | " + " | ".join(
        COLUMNS[b] for b in BENCHMARKS
    )
    lines = [head + " |", "|---|---|---|---|" + "---|" * len(BENCHMARKS)]
    for r in rows:
        q = r["quality"]
        lines.append(
            f"| {r['source']} | {q['objects']['f1']:.2f} | {q['attributes']['f1']:.2f} | "
            f"{r['parse_s']:.0f} s | " + " | ".join(cell(r["scores"][b]) for b in BENCHMARKS) + " |"
        )
    return rows, [*lines, *([""] + skipped if skipped else [])]


def _vllm_python() -> Path | None:
    prepared = vllm_env.prepare(vllm_env.build_log())
    if isinstance(prepared, str):
        print(f"vLLM CPU build not available: {prepared}", flush=True)
        return None
    return prepared[0]


def sweep(
    pipeline: ToyPipeline, seeds: tuple[int, ...], spacy_db: Path, tagalign: Cell, grid: SweepGrid
) -> tuple[list[dict], list[str]]:
    """K, tag loss and attribute-tag weight, one at a time from the TagAlign variant."""
    rows = [{"axis": "default (K 40/30, softmax, weight 1)", "cell": tagalign}]
    for axis, k_obj, k_attr in grid.k_cells:
        db = pipeline.out / f"tags-spacy-k{k_obj}-{k_attr}.db"
        if not db.exists():
            db.write_bytes(spacy_db.read_bytes())
            pipeline.vocab(db, k_obj, k_attr)
        result = train_cell(pipeline, f"k{k_obj}-{k_attr}", db, seeds, TAGALIGN[1])
        rows.append({"axis": f"{axis} {k_obj if axis == 'object K' else k_attr}", "cell": result})
    for loss in grid.losses:
        flags = [*TAGALIGN[1], "--tag-loss", loss]
        rows.append(
            {"axis": f"tag loss {loss}", "cell": train_cell(pipeline, loss, spacy_db, seeds, flags)}
        )
    for weight in grid.attribute_weights:
        flags = [*TAGALIGN[1], "--attribute-weight", str(weight)]
        result = train_cell(pipeline, f"aw{weight:g}", spacy_db, seeds, flags)
        rows.append({"axis": f"attribute weight {weight:g}×", "cell": result})
    lines = [
        "| setting | " + " | ".join(COLUMNS[b] for b in BENCHMARKS) + " | s per run |",
        "|---|" + "---|" * len(BENCHMARKS) + "---|",
    ]
    for r in rows:
        c = r["cell"]
        lines.append(
            f"| {r['axis']} | "
            + " | ".join(cell(c.scores[b]) for b in BENCHMARKS)
            + f" | {c.seconds_per_run:.0f} |"
        )
    return [{"axis": r["axis"], "scores": r["cell"].scores} for r in rows], lines


def loss_fall(runs: list[Path]) -> dict[str, list[float]]:
    """Per run: the attribute and object parts of the tag loss, mean of the last tenth of the
    logged steps over the mean of the first tenth (< 1: it fell)."""
    out: dict[str, list[float]] = {"tag_attribute": [], "tag_object": []}
    for run in runs:
        entries = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        tenth = max(1, len(entries) // 10)
        for key, ratios in out.items():
            first = sum(e[key] for e in entries[:tenth]) / tenth
            last = sum(e[key] for e in entries[-tenth:]) / tenth
            ratios.append(round(last / first, 3))
    return out


def colour_probes(
    weights: Path, world: Path, cells: dict[str, Cell], seed: int, n: int, steps: int
) -> dict[str, float]:
    """Per-patch linear colour probe mIoU on each variant's patch features (its first seed)."""
    from tagalign_toy.probe import (
        checkpoint_tokens,
        colour_probe,
        frozen_tokens,
        train_split,
        val_split,
    )

    train_images, _, train_attr = train_split(seed, n)  # images are the same at every level
    val_images, val_masks = val_split(world)
    models = {"training-free": None, **{name: c.runs[0] for name, c in cells.items()}}
    out = {}
    for name, run in models.items():
        if run is None:
            tok_train = frozen_tokens(weights, "surgery", train_images)
            tok_val = frozen_tokens(weights, "surgery", val_images)
        else:
            tok_train = checkpoint_tokens(run, train_images)
            tok_val = checkpoint_tokens(run, val_images)
        miou = colour_probe(tok_train, train_attr, tok_val, val_masks["toyshapes-attr"], steps)
        out[name] = round(miou, 2)
    return out


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/toy-claims"))
    parser.add_argument(
        "--quick", action="store_true", help="Checks the script in minutes (see SIZES)"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="A test size (the quick world cut to 32 train images, 2 steps), not a measurement",
    )
    parser.add_argument("--seeds", type=seeds_arg, default=None, help="default 0,1,2")
    parser.add_argument("--levels", type=names_arg(tuple(LEVELS)), default=tuple(LEVELS))
    parser.add_argument("--source-levels", type=names_arg(tuple(LEVELS)), default=("mid", "far"))
    parser.add_argument("--sweep-level", choices=tuple(LEVELS), default="mid")
    parser.add_argument(
        "--sources", type=names_arg(SOURCES), default=None, help=f"default {','.join(SOURCES)}"
    )
    parser.add_argument("--train-steps", type=count(), default=None)
    parser.add_argument("--n-train", type=count(), default=None)
    parser.add_argument("--n-val", type=count(), default=None)
    parser.add_argument("--n-single", type=count(), default=None)
    parser.add_argument("--n-pairs", type=count(), default=None)
    parser.add_argument("--probe-images", type=count(), default=None, help="default 2000")
    parser.add_argument("--probe-steps", type=count(), default=None, help="default 400")
    args = parser.parse_args()
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    args.quick = args.quick or args.tiny
    for name, value in SIZES[size].items():
        if getattr(args, name) is None:  # what the command line gives wins
            setattr(args, name, value)
    started = time.perf_counter()
    base = QUICK if args.quick else FULL
    world_spec = replace(
        base.world,
        n_train=args.n_train or base.world.n_train,
        n_val=args.n_val or base.world.n_val,
        n_single=args.n_single or base.world.n_single,
        n_pairs=args.n_pairs or base.world.n_pairs,
        shard_size=min(base.world.shard_size, args.n_train or base.world.n_train),
    )
    steps = args.train_steps or base.train_steps
    from tagalign_toy.pretrain import toy_clip_weights
    from tagalign_toy.toy_clip import model_spec

    weights = toy_clip_weights(args.out / "cache", base.clip, progress=False)
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "levels": {}}
    lines = ["## Caption quality", "", *caption_statistics(world_spec.seed), ""]
    spread: dict[str, list[float]] = {}
    for name in args.levels:
        level_start = time.perf_counter()
        world = generate_world(
            args.out / "world", replace(world_spec, captions=name), progress=False
        )
        pipeline = InProcessPipeline(
            args.out / "levels" / name, world, model_spec(weights), steps, base.train_batch
        )
        scores, cells, spacy_db = level_variants(pipeline, args.seeds)
        entry: dict = {"world": world.name, "scores": scores, "gains": gains(scores, args.seeds)}
        entry["seconds_per_run"] = {n: c.seconds_per_run for n, c in cells.items()}
        lines += [f"## Level `{name}` ({world.name})", "", *variants_section(scores, args.seeds)]
        for label, _, _ in VARIANTS[1:]:
            spread[f"{name}: {label.split(', ', 1)[-1][:30]} [pairs]"] = scores[label][
                "toyshapes-pairs"
            ]
        entry["loss_fall"] = loss_fall(cells[TAGALIGN[0]].runs)
        entry["colour_probe"] = colour_probes(
            weights,
            world,
            cells,
            world_spec.seed,
            args.probe_images,
            args.probe_steps,
        )
        fall = entry["loss_fall"]
        lines += [
            "",
            "Claim-3 diagnosis: tag loss, last tenth over first tenth of training, per seed "
            f"(< 1: it fell): attribute part {fall['tag_attribute']}, object part "
            f"{fall['tag_object']}. Per-patch linear colour probe (val mIoU, 7 classes) on each "
            "variant's patch features: "
            + ", ".join(f"{k} {v:.1f}" for k, v in entry["colour_probe"].items())
            + ".",
        ]
        if name in args.source_levels:
            entry["sources"], source_lines = tag_sources(
                pipeline, args.seeds, args.sources, cells[TAGALIGN[0]]
            )
            lines += [
                "",
                f"Tag source at `{name}` (TagAlign variant, seeds {list(args.seeds)}):",
                "",
            ]
            lines += source_lines
        if name == args.sweep_level:
            grid = SWEEP if size == "full" else ONE_PER_AXIS
            entry["sweep"], sweep_lines = sweep(
                pipeline, args.seeds, spacy_db, cells[TAGALIGN[0]], grid
            )
            lines += ["", f"Sweep at `{name}` (TagAlign variant, seeds {list(args.seeds)}):", ""]
            lines += sweep_lines
            save_picture(
                seed_spread_plot(
                    {r["axis"]: r["scores"]["toyshapes-pairs"] for r in entry["sweep"]},
                    f"sweep at {name}: attribute-pairs mIoU per seed",
                ),
                args.out / "sweep.png",
            )
        entry["seconds"] = round(time.perf_counter() - level_start, 1)
        report["levels"][name] = entry
        lines.append("")
    save_picture(
        seed_spread_plot(spread, f"attribute-pairs mIoU per seed, seeds {list(args.seeds)}"),
        args.out / "pairs_by_level.png",
    )
    claim = {
        f"{name}: {title.split(' (')[0][:34]}": report["levels"][name]["gains"][title]["toyshapes"]
        for name in args.levels
        for title in list(report["levels"][name]["gains"])[1:3]
    }
    save_picture(
        seed_spread_plot(claim, "claim 1: shapes mIoU gain per seed", "points"),
        args.out / "claim1_gains.png",
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    lines.append(f"Total {report['seconds']:.0f} s.")
    report["markdown"] = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "claims.md").write_text(report["markdown"] + "\n")
    (args.out / "claims.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\n" + report["markdown"])


if __name__ == "__main__":
    main()
