"""The toy pipeline's steps in this process, through the packages' Python APIs.

A bench that runs hundreds of stages (bench/bench_toy_claims.py) cannot pay a fresh interpreter
per stage: on the toy world the torch and open_clip imports and the model load cost more than
the training or evaluation itself (~40 s a stage on a loaded 2-core box, most of it start-up).
Each step here runs the same flags as `ToyPipeline`'s CLI call, read by the tool's own option
parser (`tagalign_train.cli.config_from_args`, `tagalign_eval.cli.request_from_args`), so a
figure means the same as the demo's; it prints the command it stands for. The frozen features
and tag embeddings are cached on disk by the trainer (`--cache-features`, `--text-cache`) and
shared by every run of a world. An LLM parse stays the real `tagparse run`: what a bench
measures there is the parse as a user runs it, server start included.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from tagparse.db import TagsDB
from tagparse.pipeline import run_parse
from tagparse.vocab import build_vocab

from tagalign_toy.stages import ToyPipeline

#: The parsers run through `tagparse.pipeline.run_parse` here; any other backend (an LLM's)
#: goes through `tagparse run`.
IN_PROCESS_PARSERS = ("spacy", "nltk")


@contextmanager
def stage(command: str) -> Iterator[None]:
    """Print the command a step stands for, then its seconds (a bench's per-stage cost)."""
    click.echo(f"$ {command} (in process)")
    start = time.perf_counter()
    yield
    click.echo(f"  [{time.perf_counter() - start:.1f} s]")


class InProcessPipeline(ToyPipeline):
    """`ToyPipeline` with its parse (spaCy, NLTK), vocab, train and evaluate steps as API calls."""

    def parse(
        self,
        db: Path,
        backend: str = "spacy",
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if backend not in IN_PROCESS_PARSERS:
            super().parse(db, backend, extra, env)
            return
        with stage(f"tagparse run --backend {backend} --db {db}"):
            run_parse(db, self.shards, backend, {}, progress=False)

    def vocab(self, db: Path, objects: int, attributes: int, min_count: int = 3) -> None:
        args = f"--db {db} --objects {objects} --attributes {attributes} --min-count {min_count}"
        with stage(f"tagparse vocab {args}"):
            tags = TagsDB.open(db)
            try:
                build_vocab(tags, objects, attributes, min_count, progress=False)
            finally:
                tags.close()

    def train(self, run_dir: Path, labels: Path, seed: int, flags: list[str]) -> Path:
        from tagalign_train.cli import config_from_args
        from tagalign_train.train import train

        if run_dir.exists():
            shutil.rmtree(run_dir)
        args = [*self.train_args(run_dir, labels, seed, flags), "--no-progress"]
        with stage("tagalign-train " + " ".join(args)):
            train(config_from_args(args))
        return run_dir

    def evaluate(self, run_dir: Path | None, benchmarks: tuple[str, ...]) -> dict[str, float]:
        from tagalign_eval.cli import request_from_args
        from tagalign_eval.suite import run_suite

        args = [*self.eval_args(run_dir, benchmarks), "--no-progress"]
        with stage("tagalign-eval all " + " ".join(args)):
            suite = run_suite(request_from_args(args))
        return {r.benchmark: float(r.metrics.miou) for r in suite.results}
