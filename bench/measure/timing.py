"""The one way this harness reads a clock: with the device synchronised on both sides."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import torch

from mnist_core import synchronize

T = TypeVar("T")


def timed(device: torch.device, work: Callable[[], T]) -> tuple[T, float]:
    """`work()`'s value and the seconds it took to finish on `device`."""
    synchronize(device)
    start = time.perf_counter()
    value = work()
    synchronize(device)
    return value, time.perf_counter() - start
