"""Short probes of what a device can do: dense matmul FLOP/s and copy bandwidth.

They give the denominators for model FLOPs utilisation (MFU); each warms up, then times several
repetitions between synchronisations and keeps the best, as peak figures are usually stated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.timing import timed
from mnist_core import PRECISIONS


@dataclass
class Peak:
    matmul_flops_per_s: float
    copy_bytes_per_s: float
    matmul_size: int
    copy_mb: float
    dtype: str


def _best_seconds(device: torch.device, work: Callable[[], object], repeats: int) -> float:
    work()  # warm-up: allocation, kernel selection, library initialisation
    return min(timed(device, work)[1] for _ in range(repeats))


def measure_peak(device: torch.device, precision: str = "fp32") -> Peak:
    dtype = PRECISIONS[precision] or torch.float32
    on_gpu = device.type != "cpu"
    size = 8192 if on_gpu else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    matmul_s = _best_seconds(device, lambda: torch.mm(a, b), repeats=10 if on_gpu else 5)
    copy_mb = 1024 if on_gpu else 256
    source = torch.empty(int(copy_mb * 2**20), dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    copy_s = _best_seconds(device, lambda: target.copy_(source), repeats=10)
    return Peak(
        matmul_flops_per_s=2 * size**3 / matmul_s,
        copy_bytes_per_s=2 * source.numel() / copy_s,  # every byte is read once and written once
        matmul_size=size,
        copy_mb=copy_mb,
        dtype=str(dtype).removeprefix("torch."),
    )
