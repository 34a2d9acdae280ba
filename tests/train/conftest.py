"""Fixtures of the trainer tests: tiny open_clip weights on disk, shards and a tags.db."""

from __future__ import annotations

import pytest
import torch
from train_helpers import make_tags_db, make_world, save_random_weights


@pytest.fixture(autouse=True)
def one_cpu_thread(monkeypatch):
    """Intra-op threads spin on a busy 2-core machine (a tiny model ran ~50x slower); use one,
    here and in the trainer subprocesses (OMP_NUM_THREADS also stops the trainer's own choice)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> str:
    return save_random_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """(shard paths, samples, tags.db path) of a 48-image coloured-shapes world."""
    root = tmp_path_factory.mktemp("world")
    shards, samples = make_world(root / "shards", n=48, shards=2)
    return shards, samples, make_tags_db(root / "tags.db", samples)
