"""How this harness reads a clock: with the device synchronised on both sides of a timed
span, and within it only at block boundaries, without waiting on the device."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from bench.config.devices import kind_of
from mnist_core import synchronize

T = TypeVar("T")

# Steps per within-epoch sample: 12 blocks in an epoch of 600 steps (batch 100).
BLOCK_STEPS = 50


def timed(device: torch.device, work: Callable[[], T]) -> tuple[T, float]:
    """`work()`'s value and the seconds it took to finish on `device`."""
    synchronize(device)
    start = time.perf_counter()
    value = work()
    synchronize(device)
    return value, time.perf_counter() - start


class BlockClock:
    """Marks the end of every `block_steps` steps of an epoch without a host sync, by the
    device kind's block clock: an event recorded in the stream (CUDA), the host clock (the CPU,
    whose steps are done when they return), or none (MPS: asynchronous, no events here, so no
    blocks). Counts the images each step trained on, so that a block or an epoch with a
    partial batch counts what it held."""

    def __init__(self, device: torch.device, block_steps: int) -> None:
        self.device = device
        self.block_steps = block_steps
        self.clock = kind_of(device.type).block_clock
        self.enabled = self.clock != "none"
        self.marks: list[Any] = []  # host seconds, or events
        self.images = 0  # trained on since start()
        self.block_images: list[int] = []  # of each full block
        self._images_at_mark = 0

    def _mark(self) -> Any:
        if self.clock == "event":
            event = torch.Event(self.device, enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def start(self) -> None:
        self.marks = [self._mark()] if self.enabled else []
        self.images = self._images_at_mark = 0
        self.block_images = []

    def step_done(self, index: int, images: int) -> None:
        self.images += images
        if self.enabled and (index + 1) % self.block_steps == 0:
            self.marks.append(self._mark())
            self.block_images.append(self.images - self._images_at_mark)
            self._images_at_mark = self.images

    def block_seconds(self) -> list[float]:
        """Each full block's seconds; call after the span's closing sync."""
        pairs = zip(self.marks, self.marks[1:], strict=False)
        if self.clock == "event":
            return [start.elapsed_time(end) / 1000 for start, end in pairs]
        return [end - start for start, end in pairs]

    def block_rates(self) -> list[float]:
        """Each full block's images per second, by the images its steps really trained on."""
        return [
            images / seconds
            for images, seconds in zip(self.block_images, self.block_seconds(), strict=True)
        ]
