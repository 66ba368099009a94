"""Data-parallel training with torch.distributed: process group, sharding, reductions.

Launched by torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables.
Every rank draws the same seeded permutation and takes its slice of each global batch, so the
optimisation matches a single-process run of the same global batch (DDP averages gradients).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Rank:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.world_size // self.local_world_size)


class LaunchError(ValueError):
    """The environment describes no torchrun launch that can work (e.g. WORLD_SIZE without
    RANK)."""


def _whole(name: str, default: str | None = None) -> int:
    text = os.environ.get(name, default)
    if text is None:
        raise LaunchError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} is set but {name} is not: start data-parallel "
            "runs with torchrun or --nproc-per-node, or unset WORLD_SIZE"
        )
    try:
        return int(text)
    except ValueError:
        raise LaunchError(f"{name}={text!r} is not a whole number") from None


def rank_from_environment() -> Rank | None:
    """The torchrun-assigned rank, or None in a plain single-process run."""
    world_size = _whole("WORLD_SIZE", "1")
    if world_size <= 1:
        return None
    rank = Rank(
        rank=_whole("RANK"),
        world_size=world_size,
        local_rank=_whole("LOCAL_RANK", "0"),
        local_world_size=_whole("LOCAL_WORLD_SIZE", str(world_size)),
    )
    if not 0 <= rank.rank < world_size:
        raise LaunchError(f"RANK={rank.rank} is outside 0..{world_size - 1}")
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise LaunchError(
            f"WORLD_SIZE={world_size} is set but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: start data-parallel runs with torchrun "
            "or --nproc-per-node, or unset WORLD_SIZE"
        )
    return rank


def backend_for(device: torch.device) -> str:
    """torch's default backend for the device's kind: gloo on the CPU, nccl on CUDA, …"""
    return dist.get_default_backend_for_device(device)


def init_process_group(device: torch.device, timeout_s: float) -> None:
    """Join the group; a peer that never arrives (LaunchError) or dies (collectives fail)
    ends the run after `timeout_s`. A rank on an accelerator owns its device."""
    on_accelerator = device.type != "cpu"
    if on_accelerator:
        torch.accelerator.set_device_index(device)
    try:
        dist.init_process_group(
            backend=backend_for(device),
            timeout=timedelta(seconds=timeout_s),
            device_id=device if on_accelerator else None,
        )
    except dist.DistError as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise LaunchError(
            f"the {os.environ['WORLD_SIZE']} ranks did not meet at {os.environ['MASTER_ADDR']}:"
            f"{os.environ['MASTER_PORT']} within --dist-timeout {timeout_s:g} s ({reason})"
        ) from None


def wrap(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    return DistributedDataParallel(model, device_ids=[device] if device.type != "cpu" else None)


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def gather_to_all(value: Any) -> list[Any]:
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
