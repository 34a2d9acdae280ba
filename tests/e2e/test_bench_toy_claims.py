"""`bench/bench_toy_claims.py --quick` end to end on a tiny world (issue 22): every level, variant,
seed, tag source and sweep row appears in claims.json and claims.md, and the plots are written.
It asserts structure, never margins (5 training steps on 64 images measure nothing).

The LLM tag sources are left out: they start vLLM's CPU engine (60-250 s per model on 2 cores),
which tests/tagparse/llm/test_vllm_cpu_e2e.py covers; the bench's skip line for a missing vLLM
venv is the same `vllm_env.prepare` answer that test's fixture skips on.
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
SEEDS = (0, 1, 2)
SOURCES = ("gold-image", "spacy", "nltk")


@pytest.mark.timeout(1800)
def test_quick_claims_bench_reports_every_level_variant_and_seed(tmp_path):
    out = tmp_path / "claims"
    cmd = [
        sys.executable,
        str(BENCH),
        "--quick",
        "--out",
        str(out),
        "--seeds",
        ",".join(map(str, SEEDS)),
        "--n-train",
        "32",
        "--n-val",
        "4",
        "--n-single",
        "6",
        "--n-pairs",
        "4",
        "--train-steps",
        "2",
        "--probe-images",
        "8",
        "--probe-steps",
        "2",
        "--sources",
        ",".join(SOURCES),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1700, check=False)
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
    for name in ("mid", "far"):
        assert [r["source"] for r in report["levels"][name]["sources"]] == list(SOURCES)
    axes = [r["axis"] for r in report["levels"]["mid"]["sweep"]]
    assert len(axes) == 10 and sum("attribute weight" in a for a in axes) == 3
    assert all(
        len(r["scores"]["toyshapes-pairs"]) == len(SEEDS) for r in report["levels"]["mid"]["sweep"]
    )
    assert "## Caption quality" in (out / "claims.md").read_text()
    for png in ("pairs_by_level.png", "claim1_gains.png", "sweep.png"):
        assert (out / png).stat().st_size > 0
