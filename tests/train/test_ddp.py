"""DDP with 2 gloo processes equals one process on the union batch (loss and gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tagalign_train.losses import TagAlignLoss, TagLoss
from tagalign_train.model import build_model
from tagalign_train.run import TrainStep
from torch.nn.parallel import DistributedDataParallel
from train_helpers import TINY

BATCH, TAGS = 6, 7


def _inputs():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, 32, 48, generator=g)
    targets = (torch.rand(BATCH, TAGS, generator=g) > 0.6).float()
    text = torch.randn(BATCH, 32, generator=g)
    tags = torch.randn(TAGS, 32, generator=g)
    return images, targets, text, tags


def _step_module(weights: str, tags: torch.Tensor) -> TrainStep:
    torch.manual_seed(1)  # same projector init everywhere
    model = build_model(TINY, weights, projector="conv")
    with torch.no_grad():  # open the gates so every projector weight gets a gradient
        for name, p in model.projector.named_parameters():
            if name.endswith("gate"):
                p.fill_(0.3)
    return TrainStep(model.train(), TagAlignLoss(TagLoss()), tags)


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.requires_grad}


def _worker(rank: int, world: int, weights: str, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    images, targets, text, tags = _inputs()
    part = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    step = _step_module(weights, tags)
    ddp = DistributedDataParallel(step)
    terms = ddp(images[part], targets[part], text[part], False)
    terms["loss"].backward()
    losses = torch.stack([terms["loss"].detach(), terms["tag"].detach(), terms["itc"].detach()])
    dist.all_reduce(losses)
    if rank == 0:
        torch.save({"losses": losses / world, "grads": _grads(step)}, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_equal_single_process(tiny_weights, tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, tiny_weights, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    got = torch.load(out)

    images, targets, text, tags = _inputs()
    step = _step_module(tiny_weights, tags)
    terms = step(images, targets, text, False)
    terms["loss"].backward()
    expected = torch.stack([terms["loss"], terms["tag"], terms["itc"]]).detach()
    torch.testing.assert_close(got["losses"], expected, rtol=1e-5, atol=1e-6)
    grads = _grads(step)
    assert got["grads"].keys() == grads.keys()
    for name, g in grads.items():
        assert g.abs().sum() > 0, name
        torch.testing.assert_close(got["grads"][name], g, rtol=1e-4, atol=1e-6, msg=name)
