"""Resolving and validating a run's config, once: per-device defaults, then every check.

`plan` turns the CLI's devices × loaders into resolved configs and refuses, before any work,
what cannot run; `resolve` does the same for one config (the timed run calls it, so a direct
caller cannot skip the checks). Resolving a resolved config changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from bench.config.devices import KINDS, kind_of, labels_of, trains_in
from bench.config.settings import RunConfig
from bench.errors import ConfigError
from mnist_core import LOADERS, OPTIMIZERS, PRECISIONS, resolve_device
from mnist_core.distributed import Rank


def for_device(config: RunConfig, device: str) -> RunConfig:
    """`config` on `device`, each option left at None set to that device kind's default."""
    kind = kind_of(device)
    defaults: dict[str, Any] = {"channels_last": kind.channels_last, "optimizer": kind.optimizer}
    if config.cuda_graphs:
        defaults["optimizer"] = "adam-capturable"
    chosen = {name: value for name, value in defaults.items() if getattr(config, name) is None}
    return replace(config, device=device, **chosen)


def check_precision(precision: str, device_type: str) -> None:
    """Refuse a precision the device cannot do (for a run, and for its peak probe)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    kind = kind_of(device_type)
    if precision not in kind.precisions:
        raise ConfigError(
            f"--precision {precision} needs {labels_of(trains_in(precision))}; "
            f"{kind.label} trains in {', '.join(sorted(kind.precisions))}"
        )


# More threads than cores are allowed (and noted: oversubscribed), up to this many per core;
# far beyond, OpenMP cannot create them and aborts the process.
MAX_THREADS_PER_CORE = 64


def check_threads(threads: int) -> None:
    """Refuse a CPU thread count far beyond this machine's cores."""
    cores = os.cpu_count() or 1
    if threads > MAX_THREADS_PER_CORE * cores:
        raise ConfigError(
            f"--threads {threads} is far beyond this machine's {cores} CPU cores (at most "
            f"{MAX_THREADS_PER_CORE * cores}, {MAX_THREADS_PER_CORE} per core)"
        )


def validate(config: RunConfig) -> None:
    """Refuse, before any work, a config that cannot describe a run on its device. (Ranges of
    single values — positive, finite, bounded — are RunConfig's own checks.)"""
    if config.loader not in LOADERS:
        raise ConfigError(f"unknown loader {config.loader!r}: use {' or '.join(LOADERS)}")
    device_type = config.device.split(":")[0]
    check_precision(config.precision, device_type)
    if config.threads is not None:
        check_threads(config.threads)
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {config.optimizer!r}: use {', '.join(OPTIMIZERS)}")
    if config.world_size > 1 and (config.loader != "tensor" or config.cuda_graphs):
        raise ConfigError("a distributed run needs the tensor loader and no --cuda-graphs")
    if config.world_size > config.batch_size and not config.per_rank_batch:
        raise ConfigError(
            f"--batch-size {config.batch_size} cannot be shared by {config.world_size} ranks "
            "(strong scaling gives each rank a slice); use a larger batch or --per-rank-batch"
        )
    graphs = labels_of([kind for kind in KINDS.values() if kind.graphs])
    if config.cuda_graphs:
        if config.optimizer != "adam-capturable":
            raise ConfigError("--cuda-graphs needs --optimizer adam-capturable")
        if not kind_of(device_type).graphs:
            raise ConfigError(f"--cuda-graphs needs a {graphs} device")
        if config.loader != "tensor" or config.compile or config.precision == "fp16":
            raise ConfigError("--cuda-graphs needs the tensor loader, no --compile and no fp16")
    # torch's capturable Adam asserts on CPU and MPS tensors, mid-step.
    if config.optimizer == "adam-capturable" and not kind_of(device_type).graphs:
        raise ConfigError(f"--optimizer adam-capturable needs a {graphs} device")


def resolve(config: RunConfig) -> RunConfig:
    """`config` with its device's defaults filled in, validated."""
    resolved = for_device(config, config.device)
    validate(resolved)
    return resolved


def global_batch_size(config: RunConfig) -> int:
    return config.batch_size * config.world_size if config.per_rank_batch else config.batch_size


def plan(
    config: RunConfig,
    devices: Sequence[str],
    loaders: Sequence[str],
    rank: Rank | None = None,
    world_size: int | None = None,
) -> list[RunConfig]:
    """One validated config per device × loader; raises ConfigError for what cannot run.

    `rank` is this process's place in a running torchrun group; `world_size` is that of a
    group about to be launched (so that `--nproc-per-node` fails before it starts anything).
    """
    world_size = rank.world_size if rank else (world_size or 1)
    resolved = list(dict.fromkeys(str(resolve_device(name)) for name in devices))
    loaders = list(dict.fromkeys(loaders))
    if world_size > 1 and (len(resolved) > 1 or len(loaders) > 1):
        raise ConfigError("a distributed run takes one --device and one --loader")
    kind = kind_of(resolved[0])
    # One process per accelerator: each rank takes the device of its local rank.
    launching_on_accelerators = rank is None and world_size > 1 and kind.queued
    if launching_on_accelerators and torch.accelerator.device_count() < world_size:
        raise ConfigError(
            f"{world_size} processes need {world_size} {kind.label} devices; "
            f"this machine has {torch.accelerator.device_count()}"
        )
    if rank and kind.queued:
        resolved = [str(resolve_device(f"{kind.type}:{rank.local_rank}"))]
    return [
        resolve(replace(config, device=device, loader=loader, world_size=world_size))
        for device in resolved
        for loader in loaders
    ]
