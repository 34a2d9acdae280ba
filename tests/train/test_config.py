"""config.py is torch-free: `tagalign-train --help` and the choice lists answer without torch."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from tagalign_train.config import ENSEMBLE_TEMPLATES, TrainConfig
from tagalign_train.errors import TrainError

PROBE = """
import sys
{body}
heavy = sorted(m for m in ("torch", "open_clip", "numpy") if m in sys.modules)
print(",".join(heavy) or "none")
"""


@pytest.mark.parametrize(
    "body",
    [
        "import tagalign_train.config",
        (
            "from tagalign_train.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass"
        ),
    ],
    ids=["import-config", "cli-help"],
)
def test_no_torch_is_imported(body):
    probe = PROBE.format(body=body)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "none", done.stdout


def test_resolved_fills_the_preset_and_checks_choices():
    cfg = TrainConfig(labels="t.db", data=["d.tar"], out="o", preset="toy", steps=3).resolved()
    assert (cfg.steps, cfg.batch_size, cfg.model) == (3, 32, "tagalign-tiny-ViT")
    assert cfg.kinds == ["object", "attribute"] and "progress" not in cfg.recorded()
    with pytest.raises(TrainError, match="unknown preset 'big'; choose one of paper, toy"):
        TrainConfig(labels="t.db", data=[], out="o", preset="big").resolved()
    with pytest.raises(TrainError, match="--batch-size 0 is out of range: it must be >= 1"):
        TrainConfig(labels="t.db", data=[], out="o", batch_size=0).resolved()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("image_size", 0, "--image-size 0 is out of range: it must be >= 1"),  # was: 0 meant 64
        ("lr", float("nan"), "--lr nan is out of range: it must be > 0"),
        ("seed", 2**32, "--seed 4294967296 is out of range: it must be >= 0 and <= 4294967295"),
        ("grad_clip", 0.0, "--grad-clip 0.0 is out of range: it must be > 0"),
    ],
)
def test_the_python_api_checks_the_same_ranges(field, value, message):
    with pytest.raises(TrainError, match=re.escape(message)):
        TrainConfig(labels="t.db", data=[], out="o", preset="toy", **{field: value}).resolved()


def test_every_numeric_flag_is_range_checked():
    """A new numeric flag without bounds in NUMERIC_BOUNDS fails here, not in a user's run."""
    import click
    from tagalign_train.cli import main
    from tagalign_train.config import NUMERIC_BOUNDS

    numeric = [p for p in main.params if isinstance(p.type, (click.types._NumberParamTypeBase))]
    assert numeric, "no numeric options found"
    for param in numeric:
        assert isinstance(param.type, (click.IntRange, click.FloatRange)), param.name
        assert param.name in NUMERIC_BOUNDS, param.name
    assert set(NUMERIC_BOUNDS) <= {f for f in TrainConfig.__dataclass_fields__}


def test_the_ensemble_is_open_clips_simple_imagenet_templates():
    """config.py writes the 7 templates out (importing open_clip would import torch): they must
    stay open_clip's `SIMPLE_IMAGENET_TEMPLATES`."""
    from open_clip.zero_shot_metadata import SIMPLE_IMAGENET_TEMPLATES

    assert ENSEMBLE_TEMPLATES == tuple(t("{}") for t in SIMPLE_IMAGENET_TEMPLATES)
