"""torchrun-style evaluation: two gloo ranks split the images and sum their confusion matrices;
the metrics equal a single-process run. Ranks are real processes (spawn)."""

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from eval_small_model import small_eval_model
from eval_synthetic import write_benchmark
from tagalign_eval.datasets import get_benchmark, open_benchmark
from tagalign_eval.evaluate import evaluate
from tagalign_eval.protocols import resolve_protocol
from tagalign_train.distributed import shard

OVERRIDES = {"short_side": 48, "crop": 32, "stride": 16}


def _rank(rank: int, world: int, port: int, data_root: str, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        LOCAL_RANK=str(rank),
    )
    torch.distributed.init_process_group("gloo")
    dataset = open_benchmark(get_benchmark("voc"), data_root)
    protocol = resolve_protocol("tagalign-v3", "voc", OVERRIDES)
    result = evaluate(small_eval_model(), dataset, protocol, progress=False)
    torch.save(result, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_strided_shards_cover_every_image_once():
    parts = [shard(range(7), r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(7))
    assert [len(p) for p in parts] == [3, 2, 2]


@pytest.mark.slow
def test_two_ranks_equal_one_process(tmp_path, monkeypatch):
    write_benchmark(get_benchmark("voc"), tmp_path / "data", n=5, size=(56, 40))
    single = evaluate(
        small_eval_model(),
        open_benchmark(get_benchmark("voc"), tmp_path / "data"),
        resolve_protocol("tagalign-v3", "voc", OVERRIDES),
        progress=False,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, *sys.path]))
    mp.start_processes(
        _rank, args=(2, port, str(tmp_path / "data"), str(tmp_path)), nprocs=2, start_method="spawn"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for r in ranks:
        assert r.world_size == 2 and r.images == 5
        assert r.metrics == single.metrics
