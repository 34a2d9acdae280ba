"""The training-free baselines: `--baseline` name -> the frozen CLIP's dense method.

Torch-free, so the CLI can offer the choices without importing a model. `clip` is the plain CLIP
(its last block unchanged); every other dense method of tagalign-train is a baseline under its own
name, so a method added there is evaluable here without another list to keep in step.
"""

from __future__ import annotations

from tagalign_train.config import DENSE_METHODS

BASELINES = {"clip": "none", **{m: m for m in DENSE_METHODS if m != "none"}}
