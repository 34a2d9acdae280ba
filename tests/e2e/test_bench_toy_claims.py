"""`bench/bench_toy_claims.py --tiny` end to end (issue 22): every level, variant, seed, tag
source and sweep axis appears in claims.json and claims.md, and the plots are written. `--tiny`
is the quick form at a test size (32 train images, 2 training steps, one value per sweep axis,
every stage in the bench's one process); it asserts structure, never margins (2 steps on 32
images measure nothing).

The LLM tag sources are left out: they start vLLM's CPU engine (60-250 s per model on 2 cores),
which tests/tagparse/llm/test_vllm_cpu_e2e.py covers; the bench's skip line for a missing vLLM
venv is the same `vllm_env.prepare` answer that test's fixture skips on. NLTK is left out too:
it takes the same in-process `run_parse` path as spaCy, which every level runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tagalign_toy.demo import BENCHMARKS, VARIANTS

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_toy_claims.py"
SEEDS = (0, 1)
SOURCES = ("gold-image", "spacy")


@pytest.mark.timeout(900)
def test_tiny_claims_bench_reports_every_level_variant_and_seed(tmp_path):
    out = tmp_path / "claims"
    cmd = [
        sys.executable,
        str(BENCH),
        "--tiny",
        "--out",
        str(out),
        "--seeds",
        ",".join(map(str, SEEDS)),
        "--sources",
        ",".join(SOURCES),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=850, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "claims.json").read_text())
    assert list(report["levels"]) == ["clean", "mid", "far"]
    for name, level in report["levels"].items():
        assert list(level["scores"]) == [v[0] for v in VARIANTS]
        for label, name_, _ in VARIANTS:
            for bench in BENCHMARKS:
                assert len(level["scores"][label][bench]) == (len(SEEDS) if name_ else 1)
        for gain in level["gains"].values():
            assert all(len(gain[b]) == len(SEEDS) for b in BENCHMARKS)
        assert len(level["loss_fall"]["tag_attribute"]) == len(SEEDS)
        assert set(level["colour_probe"]) == {"training-free", "itc", "itc-obj", "itc-obj-attr"}
        assert ("sources" in level) == (name in ("mid", "far"))
        assert ("sweep" in level) == (name == "mid")
        assert f"## Level `{name}`" in report["markdown"]
    markdown = (out / "claims.md").read_text()
    for name in ("mid", "far"):
        rows = report["levels"][name]["sources"]
        assert [r["source"] for r in rows] == list(SOURCES)
        assert all(r["parse_s"] >= 0 and len(r["scores"]["toyshapes"]) == len(SEEDS) for r in rows)
    for source in SOURCES:
        assert markdown.count(f"| {source} |") == 2  # the mid and far tables
    axes = [r["axis"] for r in report["levels"]["mid"]["sweep"]]
    assert axes == [
        "default (K 40/30, softmax, weight 1)",
        "object K 6",
        "tag loss bce",
        "attribute weight 2×",
    ]
    assert all(
        len(r["scores"]["toyshapes-pairs"]) == len(SEEDS) for r in report["levels"]["mid"]["sweep"]
    )
    assert all(f"| {axis} |" in markdown for axis in axes)
    assert "## Caption quality" in markdown
    for png in ("pairs_by_level.png", "claim1_gains.png", "sweep.png"):
        assert (out / png).stat().st_size > 0
