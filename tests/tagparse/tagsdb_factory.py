"""Real tags.db files for fault tests, and the real `tagparse` CLI with the test backend.

`make_tagsdb` parses captions with the `wordsplit` test backend through the Python API and builds
the vocabulary, so a test starts from a complete file (samples, parses, vocab, labels, meta).
`wordsplit_cli` is the argv of the real `tagparse.cli.main` in a subprocess with `wordsplit`
registered first (the installed `tagparse` script cannot know a test backend); commands that need
no backend run `.venv/bin/tagparse` itself through `cli_checks.run_cli`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import wordsplit_backend
from tagparse.backends import backend_names, register_backend, unregister_backend
from tagparse.db import TagsDB
from tagparse.pipeline import run_parse
from tagparse.vocab import build_vocab

HERE = Path(__file__).resolve().parent

_LAUNCH = (
    "import functools, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "delay = float(sys.argv.pop(1)); "
    "import wordsplit_backend; from tagparse.backends import register_backend; "
    "register_backend('wordsplit', functools.partial(wordsplit_backend.create, delay=delay)); "
    "from tagparse.cli import main; main()"
)


def write_captions(path: Path, n: int, start: int = 0) -> Path:
    """A `filename,caption` CSV of `n` distinct captions."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("filename,caption\n")
        f.writelines(
            f"{i:06d}.jpg,a red car number {i} near a tall tree\n" for i in range(start, start + n)
        )
    return path


def make_tagsdb(path: Path, n: int = 20) -> Path:
    """A complete tags.db of `n` samples (parses, vocabulary, labels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    csv = write_captions(path.with_suffix(".csv"), n)
    registered = wordsplit_backend.BACKEND in backend_names()  # by a test's fixture
    register_backend(wordsplit_backend.BACKEND, wordsplit_backend.create)
    try:
        run_parse(path, [str(csv)], wordsplit_backend.BACKEND, {}, progress=False)
    finally:
        if not registered:
            unregister_backend(wordsplit_backend.BACKEND)
    db = TagsDB.open(path)
    try:
        build_vocab(db, 100, 100, progress=False)
    finally:
        db.close()
    return path


def start_wordsplit_writers(
    db: Path, inputs: list[Path], *flags: object, delay: float = 0.0
) -> list[subprocess.Popen]:
    """One `tagparse run --backend wordsplit` per input CSV, all writing `db`, started at once
    (text stdout/stderr piped): concurrent writers on one tags.db."""
    return [
        subprocess.Popen(
            wordsplit_cli(
                "run", "--backend", "wordsplit", "--input", csv, "--db", db, "--no-progress",
                *flags, delay=delay,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for csv in inputs
    ]  # fmt: skip


def wordsplit_cli(*args: object, delay: float = 0.0) -> list[str]:
    """argv of `tagparse ARGS...` with `--backend wordsplit` available (each batch sleeps
    `delay` seconds, so a test can act while a run is in progress)."""
    return [sys.executable, "-c", _LAUNCH, str(HERE), str(delay), *(str(a) for a in args)]
