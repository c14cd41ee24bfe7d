"""Running under torchrun: which share of the work this process does, and a barrier.

Generation needs no collective: each rank takes every world_size-th work item of a fixed order and
appends to its own progress file; rank 0 merges after a barrier. Seeds never involve the rank, so the
images are the same on any number of processes. Outside torchrun this is a world of one and imports
nothing from torch.distributed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's items: a stride over the fixed order, identical on every rank's view of `items`."""
        return list(items[self.rank :: self.size])

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()


def rank_prefix() -> str:
    """`[rank N] ` under torchrun (so interleaved messages say where they come from), else nothing."""
    return f"[rank {os.environ.get('RANK', '0')}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""


def current_world(device: str = "auto", timeout_minutes: int = 60) -> World:
    """Read torchrun's environment; join the process group (nccl on GPU, gloo on CPU) once."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        use_nccl = device != "cpu" and torch.cuda.is_available()
        if use_nccl:
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl" if use_nccl else "gloo", timeout=timedelta(minutes=timeout_minutes))
    return world


def finish_world(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
