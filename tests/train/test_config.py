"""config.py is torch-free: `tagalign-train --help` and the choice lists answer without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tagalign_train.config import TrainConfig
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
    with pytest.raises(TrainError, match="--batch-size must be >= 1"):
        TrainConfig(labels="t.db", data=[], out="o", batch_size=0).resolved()
