"""Fixtures of the evaluator tests: a tiny open_clip model with random weights saved to disk (the
users' `--pretrained PATH` path), and a small conv dense function for the inference-only tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

TINY = "tagalign-tiny-ViT"


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> str:
    """Random weights of the trainer's tiny config, written with torch.save."""
    import open_clip
    import tagalign_train.backbone  # noqa: F401  (registers the tiny configs)

    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture(scope="session")
def surgery_model(tiny_weights):
    from tagalign_eval.models import load_eval_model

    return load_eval_model(baseline="surgery", model_name=TINY, pretrained=tiny_weights)


@pytest.fixture
def dense():
    """The dense function of a small conv model (trained + baseline paths)."""
    from eval_small_model import SmallDenseModel

    return SmallDenseModel().eval().dense_embeddings_with_baseline
