"""The toy pipeline's steps as a user types them: each one is a real CLI call in a subprocess.

`tagalign-demo` and `bench/bench_toy_v2.py` both drive the toolkit through these, so a bench
figure and the demo's table come from the same commands (printed as they run, stdout logged).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
from tagparse.parentdeath import die_with_parent

from tagalign_toy.benchmark import TOY_PROTOCOL
from tagalign_toy.scene import IMAGE_SIZE


class DemoError(Exception):
    """A stage failed; the message names the command and where its log is."""


def tool(name: str) -> str:
    """The console script installed next to this Python (the venv's), else from PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def run_cli(args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    """Run one tool as a user would; progress bars go to the terminal, a copy of stdout to `log`.

    `env` adds variables to this process's environment for the tool. The tool dies with the
    demo, even a SIGKILLed one (an orphaned `tagparse run` or trainer
    would go on computing, and write into the folder a re-run is using).
    """
    click.echo("$ " + " ".join(args))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.run(
            args,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
            env=None if env is None else {**os.environ, **env},
            # after fork only the prctl syscall runs (safe beside the demo's threads)
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        f.write(proc.stdout)
    click.echo(proc.stdout.rstrip())
    if proc.returncode != 0:
        raise DemoError(f"`{args[0]} {args[1]}` failed with exit code {proc.returncode}; see {log}")


def protocol_flags() -> list[str]:
    """The toy protocol (one whole-image window) as `tagalign-eval` flags."""
    return [a for k, v in TOY_PROTOCOL.items() for a in (f"--{k.replace('_', '-')}", str(v))]


@dataclass(frozen=True)
class ToyPipeline:
    """One world, one toy CLIP and an output folder; the CLI steps that work on them."""

    out: Path
    world: Path
    toy_model: str
    train_steps: int
    train_batch: int

    @property
    def shards(self) -> list[str]:
        return sorted(str(p) for p in (self.world / "train").glob("*.tar"))

    def log(self, name: str) -> Path:
        return self.out / "logs" / f"{name}.log"

    def parse(
        self,
        db: Path,
        backend: str = "spacy",
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`tagparse run` over the train shards (cached per caption in `db`); `extra` are more
        flags (a backend's options), `env` more environment (an LLM backend's settings)."""
        inputs = [a for s in self.shards for a in ("--input", s)]
        run_cli(
            [
                tool("tagparse"),
                "run",
                "--backend",
                backend,
                "--db",
                str(db),
                *inputs,
                *(extra or []),
            ],
            self.log(f"tagparse-run-{db.stem}"),
            env,
        )

    def vocab(self, db: Path, objects: int, attributes: int, min_count: int = 3) -> None:
        """`tagparse vocab`: the top-K objects and attributes and the labels of every sample."""
        run_cli(
            [
                tool("tagparse"),
                "vocab",
                "--db",
                str(db),
                "--objects",
                str(objects),
                "--attributes",
                str(attributes),
                "--min-count",
                str(min_count),
            ],
            self.log(f"tagparse-vocab-{db.stem}"),
        )

    def train(self, run_dir: Path, labels: Path, seed: int, flags: list[str]) -> Path:
        """`tagalign-train --preset toy` into a fresh `run_dir`."""
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_cli(
            [tool("tagalign-train"), *self.train_args(run_dir, labels, seed, flags)],
            self.log(f"train-{run_dir.name}"),
        )
        return run_dir

    def train_args(self, run_dir: Path, labels: Path, seed: int, flags: list[str]) -> list[str]:
        """The `tagalign-train` flags of one run (shared by the CLI and in-process pipelines)."""
        return [
            "--preset",
            "toy",
            "--model",
            self.toy_model,
            "--image-size",
            str(IMAGE_SIZE),
            "--labels",
            str(labels),
            "--steps",
            str(self.train_steps),
            "--batch-size",
            str(self.train_batch),
            "--seed",
            str(seed),
            "--cache-features",
            str(self.out / "cache" / "features"),
            "--text-cache",
            str(self.out / "cache" / "text"),
            "--workers",
            "0",
            *[a for s in self.shards for a in ("--data", s)],
            "--out",
            str(run_dir),
            *flags,
        ]

    def model_args(self, run_dir: Path | None) -> list[str]:
        """`--checkpoint RUN`, or the training-free baseline (CLIP Surgery on the toy CLIP)."""
        if run_dir is None:
            return ["--baseline", "surgery", "--model", self.toy_model]
        return ["--checkpoint", str(run_dir)]

    def evaluate(self, run_dir: Path | None, benchmarks: tuple[str, ...]) -> dict[str, float]:
        """`tagalign-eval all --benchmarks ...` on the world; mIoU per benchmark."""
        name = run_dir.name if run_dir is not None else "training-free"
        result_json = self.out / "results" / f"{name}.json"
        result_json.parent.mkdir(parents=True, exist_ok=True)
        run_cli(
            [
                tool("tagalign-eval"),
                "all",
                *self.eval_args(run_dir, benchmarks),
                "--out",
                str(result_json),
            ],
            self.log(f"eval-{name}"),
        )
        results = json.loads(result_json.read_text())["results"]
        return {r["benchmark"]: float(r["metrics"]["mIoU"]) for r in results}

    def eval_args(self, run_dir: Path | None, benchmarks: tuple[str, ...]) -> list[str]:
        """The `tagalign-eval all` flags of one model (shared by the CLI and in-process
        pipelines; the result file is the caller's)."""
        return [
            "--benchmarks",
            ",".join(benchmarks),
            "--data-root",
            str(self.world),
            *self.model_args(run_dir),
            *protocol_flags(),
            "--device",
            "cpu",
            "--workers",
            "0",
        ]
