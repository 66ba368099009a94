"""Throughput against batch size (and CPU thread count): where each device saturates.
Measures only; bench.jobs stores the points and bench.show draws them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from bench.config.devices import kind_of
from bench.config.resolve import plan, resolve
from bench.config.settings import RunConfig
from bench.measure.environment import device_name
from bench.measure.run import build_model, set_up_arithmetic
from bench.measure.timing import timed
from bench.storage.records import SweepPoint
from mnist_core import (
    evaluate,
    make_loader,
    make_train_step,
    train_epoch,
)
from mnist_core.data import MnistData

WARMUP_STEPS = 3  # untimed steps before each point's timed ones


def measure_point(config: RunConfig, data: MnistData, steps: int, warmup_steps: int) -> SweepPoint:
    """Training throughput over `steps` steps after a warm-up (counting the images those steps
    held: the last may be a partial batch), and one evaluation pass."""
    assert config.optimizer is not None, "plan() resolves the config"
    device = torch.device(config.device)
    _, generator = set_up_arithmetic(config, device)
    model, optimizer = build_model(config, device)
    step = make_train_step(model, optimizer, config.precision)
    train_loader = make_loader(config.loader, data.train, config.batch_size, device, generator)
    steps = min(steps, len(train_loader) - warmup_steps)
    batches = iter(train_loader)
    train_epoch(step, batches, warmup_steps)
    step_images: list[int] = []
    _, train_s = timed(
        device, lambda: train_epoch(step, batches, steps, lambda _, n: step_images.append(n))
    )
    test_loader = make_loader(config.loader, data.test, config.batch_size, device)
    evaluate(model, test_loader, config.precision)  # warm-up at this batch size
    _, eval_s = timed(device, lambda: evaluate(model, test_loader, config.precision))
    return SweepPoint(
        device=config.device,
        device_name=device_name(device),
        threads=torch.get_num_threads(),
        batch_size=config.batch_size,
        steps=steps,
        train_images_per_s=sum(step_images) / train_s,
        eval_images_per_s=len(data.test) / eval_s,
        channels_last=bool(config.channels_last),
        optimizer=config.optimizer,
        precision=config.precision,
    )


def sweep(
    config: RunConfig,
    devices: list[str],
    batch_sizes: list[int],
    threads: list[int | None],
    data: MnistData,
    steps: int,
    warmup_steps: int = WARMUP_STEPS,
    on_point: Callable[[SweepPoint], None] | None = None,
) -> list[SweepPoint]:
    """Every device × CPU thread count × batch size; threads apply to CPU devices only."""
    points = []
    for device_config in plan(config, devices, [config.loader]):
        host_threads = kind_of(device_config.device).host_threads
        for thread_count in threads if host_threads else [None]:
            if thread_count is not None:
                torch.set_num_threads(thread_count)
            for batch_size in batch_sizes:
                point_config = resolve(replace(device_config, batch_size=batch_size))
                point = measure_point(point_config, data, steps, warmup_steps)
                points.append(point)
                if on_point:
                    on_point(point)
    return points
