"""End to end: `tagalign-demo` drives the real CLIs (tagparse run/vocab, tagalign-train,
tagalign-eval train/predict) in subprocesses on a reduced ToyShapes v2 world (the shipped toy
CLIP, contrastive-only and TagAlign runs), and the outputs hang together.

MARGINS are the gains this reduced demo showed on every one of training seeds 0, 1 and 2
(bench/RESULTS.md, "Issue 14", reduced demo: `--train-seeds 0,1,2`), less headroom; the test runs
seed 0. TagAlign minus training-free, seeds 0 / 1 / 2: shapes +1.6 / +1.3 / +1.1 (asserted ≥ 0.5),
attribute pairs +1.9 / +1.8 / +1.8 (asserted ≥ 1.0). At this size the tags do not beat
contrastive-only (shapes 19.2 / 18.9 / 18.7 vs 19.3 / 18.7 / 18.8), so that is not asserted here;
the full bench measures it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tagalign_toy.scene import BACKGROUNDS, SHAPES
from tagparse.reader import load_labels

FREE = "training-free (surgery on the toy CLIP)"
ITC = "projector, contrastive loss only"
TAGALIGN = "projector, contrastive + object + attribute tags (TagAlign)"
#: (better variant, worse variant, benchmark, smallest gain required)
MARGINS = [
    (TAGALIGN, FREE, "toyshapes", 0.5),
    (TAGALIGN, FREE, "toyshapes-pairs", 1.0),
]
REDUCED = [
    "--quick",
    "--n-val",
    "16",
    "--train-steps",
    "150",
    "--variants",
    "itc,itc-obj-attr",
    "--threads",
    "1",
]


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_quick_demo_through_the_real_clis(tmp_path):
    out = tmp_path / "demo"
    demo = Path(sys.executable).with_name("tagalign-demo")
    proc = subprocess.run(
        [str(demo), *REDUCED, "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = "| variant | shapes mIoU | attribute-shapes mIoU | attribute-pairs mIoU |"
    assert header in proc.stdout

    labels = load_labels(out / "tags.db")
    objects, attributes = set(labels.vocab["object"]), set(labels.vocab["attribute"])
    assert set(SHAPES) - {"cross"} <= objects  # "cross" may be read as a verb by spaCy
    assert set(BACKGROUNDS) <= objects
    assert {"red", "blue", "yellow", "purple", "small", "big"} <= attributes

    from tagalign_eval.models import load_eval_model

    model = load_eval_model(str(out / "runs" / "itc-obj-attr"))
    assert model.model.config.name.startswith("local-dir:")  # the toy CLIP's folder
    assert "toy-clip-" in model.model.config.name

    summary = json.loads((out / "summary.json").read_text())
    assert summary["zero_shot"]["shape"] >= 0.85 and summary["zero_shot"]["colour"] >= 0.85
    assert set(summary["scores"]) == {FREE, ITC, TAGALIGN}
    scores = summary["scores"]
    assert all(0 <= v <= 100 for s in scores.values() for vs in s.values() for v in vs), scores
    for better, worse, benchmark, margin in MARGINS:
        gain = scores[better][benchmark][0] - scores[worse][benchmark][0]
        assert gain >= margin, (better, worse, benchmark, gain, scores)
    for grid in summary["overlays"]:
        assert Path(grid).is_file()
