"""torchrun support shared by the trainer and the evaluator.

torchrun describes the job in the environment (RANK, WORLD_SIZE, LOCAL_RANK); a plain run is
rank 0 of 1 and every helper here is then a no-op, so callers need no `if distributed:` branches.
NCCL is used on GPUs, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """Where this process sits in the job, and the device it computes on."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def rank_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) for a plain run."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Rank 0 writes files and prints; the other ranks only compute."""
    return rank_world()[0] == 0


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def setup_distributed() -> Dist:
    """The trainer's setup: this rank's GPU (or the CPU), joining the group when world > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = (
        torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(_backend())
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    return Dist(rank, world, local_rank, device)


def init_from_env() -> torch.device | None:
    """The evaluator's setup: join the group torchrun describes; this rank's device (None if
    single, so that the caller's own --device choice stands)."""
    rank, world = rank_world()
    if world == 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group(_backend())
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def teardown() -> None:
    """Leave the process group before exit (torchrun warns about groups left open)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _in_group() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(indices: range | list[int], rank: int, world: int) -> list[int]:
    """Strided split, so ranks get images of similar sizes and counts differ by at most one."""
    return list(indices)[rank::world]


def _all_reduce(tensor: torch.Tensor, op: dist.ReduceOp) -> torch.Tensor:
    if _in_group():
        if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
            moved = tensor.cuda()
            dist.all_reduce(moved, op=op)
            tensor.copy_(moved.cpu())
        else:
            dist.all_reduce(tensor, op=op)
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks in place (a no-op outside a process group)."""
    return _all_reduce(tensor, dist.ReduceOp.SUM)


def all_reduce_min(tensor: torch.Tensor) -> torch.Tensor:
    """Minimum over ranks in place (a no-op outside a process group)."""
    return _all_reduce(tensor, dist.ReduceOp.MIN)


def gather_objects(obj: object) -> list[object]:
    """Every rank's `obj`, in rank order ([obj] outside a process group)."""
    if _in_group():
        out: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def barrier() -> None:
    """Wait for every rank (a no-op outside a process group)."""
    if _in_group():
        dist.barrier()
