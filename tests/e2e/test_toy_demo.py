"""End to end: `tagalign-demo` drives the real CLIs (tagparse run/vocab, tagalign-train,
tagalign-eval) in subprocesses on a reduced ToyShapes world (300 train / 16 val images, toy CLIP
100 steps, one TagAlign run of 30 steps), and the outputs hang together. About 100 s on 2 cores.

The issue asked for "trained beats training-free by a measured margin". The measurements
(bench/RESULTS.md, "Issue 7", 2026-11-29) do NOT show one: the toy CLIP pretrained within the CPU
budget stays at or below chance at naming shapes (zero-shot 25.5% vs 25.7% chance on the full
world), so there is no shape information for the projector to localize. Measured shapes mIoU,
trained TagAlign minus training-free: 0.0 on this reduced run (13.4 vs 13.4), -1.1 on `--quick`
(14.8 vs 15.9). So this test asserts what the measurements support — training does not make
shapes mIoU worse by more than TOLERANCE points (the worst measured drop, 1.1, plus headroom for
seed noise on 16 val images) — and must be tightened to a positive margin once the toy CLIP learns
shapes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tagalign_eval.toyworld.generator import BACKGROUNDS, SHAPES
from tagparse.reader import load_labels

TOLERANCE = 3.0
#: A smaller world than `--quick`, one trained variant (TagAlign) against the training-free baseline.
REDUCED = ["--quick", "--n-train", "300", "--n-val", "16", "--clip-steps", "100", "--train-steps", "30",
           "--variants", "itc-obj-attr", "--threads", "1"]


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_quick_demo_through_the_real_clis(tmp_path):
    out = tmp_path / "demo"
    demo = Path(sys.executable).with_name("tagalign-demo")
    proc = subprocess.run([str(demo), *REDUCED, "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| variant | shapes mIoU | attribute-shapes mIoU |" in proc.stdout

    labels = load_labels(out / "tags.db")
    objects, attributes = set(labels.vocab["object"]), set(labels.vocab["attribute"])
    assert set(SHAPES) - {"cross"} <= objects  # "cross" may be read as a verb by spaCy
    assert set(BACKGROUNDS) <= objects
    assert {"red", "blue", "yellow", "purple", "small", "big"} <= attributes

    from tagalign_eval.models import load_eval_model

    model = load_eval_model(str(out / "runs" / "itc-obj-attr"))
    assert model.model.config["model"] == "toy-clip"

    summary = json.loads((out / "summary.json").read_text())
    scores = summary["scores"]
    free = scores["training-free (surgery on the toy CLIP)"]["toyshapes"]
    best = max(s["toyshapes"] for label, s in scores.items() if label.startswith("projector"))
    assert all(0 <= v <= 100 for s in scores.values() for v in s.values()), scores
    assert best >= free - TOLERANCE, scores
    assert list((out / "overlays" / "training-free").glob("*_overlay.png"))
