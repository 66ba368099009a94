"""Where a CUDA training step's time goes: torch.profiler over eager and graphed steps.

    python scripts/cuda_profile.py [--steps 200] [--batch-size 100] [--precision fp32]

For each path (eager with fused Adam, the whole step as one CUDA graph) it trains `--steps`
steps on the on-device data after a warm-up, and prints the wall time per step, the GPU's busy
time per step (the sum of its kernels' durations), the idle gaps between consecutive kernels,
and the top kernels by total time. A step whose busy time is a small part of its wall time is
bound by launches, not arithmetic.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from mnist_core import (
    Net,
    TensorLoader,
    load_mnist,
    make_optimizer,
    make_train_step,
    seed_everything,
    set_float32_precision,
)
from mnist_core.graphs import GraphedTrainStep


def _kernels(prof: profile) -> list[tuple[str, float, float]]:
    """(name, start µs, end µs) of every kernel the GPU ran, in start order."""
    events = [
        (event.name, event.time_range.start, event.time_range.end)
        for event in prof.events()
        if event.device_type == torch.autograd.DeviceType.CUDA
    ]
    return sorted(events, key=lambda kernel: kernel[1])


def _summary(label: str, prof: profile, steps: int, batch_size: int, wall_s: float) -> None:
    kernels = _kernels(prof)
    busy_us = sum(end - start for _, start, end in kernels)
    gaps = [max(0.0, b[1] - a[2]) for a, b in zip(kernels, kernels[1:], strict=False)]
    wall_us = wall_s * 1e6 / steps
    busy_per_step = busy_us / steps
    print(f"\n## {label}: {steps} steps")
    print(
        f"wall {wall_us:.1f} µs/step ({batch_size / wall_us * 1e6:,.0f} images/s at batch "
        f"{batch_size}), GPU busy {busy_per_step:.1f} µs/step "
        f"({100 * busy_per_step / wall_us:.0f} % of wall), {len(kernels) / steps:.1f} kernels/step"
    )
    if gaps:
        print(
            f"gaps between kernels: median {statistics.median(gaps):.2f} µs, "
            f"mean {statistics.fmean(gaps):.2f} µs, total {sum(gaps) / steps:.1f} µs/step"
        )
    totals: dict[str, list[float]] = {}
    for name, start, end in kernels:
        totals.setdefault(name, []).append(end - start)
    print("top kernels by total time (µs/step, calls/step, name):")
    ranked = sorted(totals.items(), key=lambda item: -sum(item[1]))[:10]
    for name, durations in ranked:
        print(f"  {sum(durations) / steps:8.2f} {len(durations) / steps:5.1f}  {name[:90]}")


def _profile(label: str, step, batches, steps: int, batch_size: int) -> None:
    for _ in range(20):
        step(*next(batches))
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        started = time.perf_counter()
        for _ in range(steps):
            step(*next(batches))
        torch.cuda.synchronize()
        wall_s = time.perf_counter() - started
    _summary(label, prof, steps, batch_size, wall_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--precision", choices=("fp32", "tf32"), default="fp32")
    args = parser.parse_args()
    device = torch.device("cuda:0")
    set_float32_precision(args.precision)  # torch's own default lets cuDNN's convs use TF32
    data = load_mnist(download=False)
    name = torch.cuda.get_device_name(device)
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}, {args.precision}")

    def batches(loader: TensorLoader, graphed: bool):
        while True:
            for index in loader.index_batches():
                yield (index,) if graphed else (loader.images[index], loader.labels[index])

    for label, graphed in (("eager, fused Adam", False), ("CUDA graph, capturable Adam", True)):
        generator = seed_everything(0)
        model = Net().to(device)
        loader = TensorLoader(data.train, args.batch_size, device, generator)
        step: Callable[..., torch.Tensor]
        if graphed:
            optimizer = make_optimizer(model, 1e-3, "adam-capturable")
            step = GraphedTrainStep(model, optimizer, loader.images, loader.labels, args.batch_size)
        else:
            step = make_train_step(model, make_optimizer(model, 1e-3, "adam-fused"))
        _profile(label, step, batches(loader, graphed), args.steps, args.batch_size)


if __name__ == "__main__":
    main()
