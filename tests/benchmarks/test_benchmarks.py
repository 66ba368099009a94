"""Micro-benchmarks of the building blocks: `pytest --benchmark-only` (plain pytest skips them).

Each is parametrised over the devices present and synchronises inside the timed function, so a
GPU timing covers finished work. Each records images/s in extra_info. All run in the default
precision of `mnist-bench run`: IEEE fp32 (no TF32 on CUDA).
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from bench.config.resolve import for_device
from bench.config.settings import RunConfig
from bench.errors import ResultFileError
from bench.measure.run import build_model, set_up_arithmetic
from bench.storage.files import load_result
from mnist_core import (
    DataError,
    Net,
    evaluate,
    load_mnist,
    make_loader,
    make_train_step,
    set_float32_precision,
    synchronize,
)
from tests.conftest import SHARED_MNIST, make_tiny_mnist

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TRAIN_BATCH, EVAL_BATCH = 100, 1000


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    """Real MNIST where it is found; otherwise MNIST-sized stand-in files (same shapes)."""
    for candidate in (os.environ.get("MNIST_BENCH_DATA"), SHARED_MNIST):
        if candidate:
            try:
                return load_mnist(candidate, download=False)
            except DataError:
                continue
    folder = make_tiny_mnist(tmp_path_factory.mktemp("mnist"), train=60000, test=10000)
    return load_mnist(folder, download=False)


@pytest.fixture(autouse=True)
def ieee_fp32():
    set_float32_precision("fp32")


def record_rate(benchmark, images: int) -> None:
    benchmark.extra_info["images"] = images
    benchmark.extra_info["images_per_s"] = images / benchmark.stats.stats.mean


@pytest.mark.benchmark(group="forward (eval batch 1000)")
@pytest.mark.parametrize("device", DEVICES)
def test_forward(benchmark, device):
    dev = torch.device(device)
    model = Net().to(dev).eval()
    images = torch.rand(EVAL_BATCH, 1, 28, 28, device=dev)

    @torch.no_grad()
    def forward():
        model(images)
        synchronize(dev)

    benchmark(forward)
    record_rate(benchmark, EVAL_BATCH)


@pytest.mark.benchmark(group="training step (batch 100)")
@pytest.mark.parametrize("path", ["seed", "device-default"])
@pytest.mark.parametrize("device", DEVICES)
def test_training_step(benchmark, device, path):
    """`seed`: contiguous tensors and torch's default Adam, as the seed script trains;
    `device-default`: what `mnist-bench run` uses on this device (e.g. channels-last, fused)."""
    dev = torch.device(device)
    config = for_device(RunConfig(device=device), device)
    if path == "seed":
        config = replace(config, channels_last=False, optimizer="adam")
    set_up_arithmetic(config, dev)
    model, optimizer = build_model(config, dev)
    step = make_train_step(model, optimizer)
    images = torch.rand(TRAIN_BATCH, 1, 28, 28, device=dev)
    labels = torch.randint(0, 10, (TRAIN_BATCH,), device=dev)

    def train_step():
        step(images, labels)
        synchronize(dev)

    benchmark(train_step)
    record_rate(benchmark, TRAIN_BATCH)
    assert F.cross_entropy(model(images), labels).isfinite()


@pytest.mark.benchmark(group="loader: one training epoch of batches, data only")
@pytest.mark.parametrize("loader", ["tensor", "torchvision"])
@pytest.mark.parametrize("device", DEVICES)
def test_loader_epoch(benchmark, mnist, loader, device):
    dev = torch.device(device)
    batches = make_loader(loader, mnist.train, TRAIN_BATCH, dev, torch.Generator().manual_seed(0))

    def epoch():
        for images, labels in batches:
            images.to(dev), labels.to(dev)
        synchronize(dev)

    benchmark.pedantic(epoch, rounds=3, warmup_rounds=1 if loader == "tensor" else 0)
    record_rate(benchmark, len(mnist.train))


@pytest.mark.benchmark(group="evaluation pass over the test set")
@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_pass(benchmark, mnist, device):
    dev = torch.device(device)
    model = Net().to(dev)
    batches = make_loader("tensor", mnist.test, EVAL_BATCH, dev)
    result = benchmark.pedantic(lambda: evaluate(model, batches), rounds=5, warmup_rounds=1)
    record_rate(benchmark, len(mnist.test))
    assert sum(map(sum, result.confusion)) == len(mnist.test)


@pytest.mark.benchmark(group="duplicate key")
def test_a_key_given_twice_among_many(benchmark, tmp_path):
    """30,000 keys, the last one twice: refused in well under a second here; a search for it in
    the list of keys, once per key, took seconds, and at the 64 MB a document may have, days."""
    keys = 30_000
    body = ",".join(f'"k{index}": 0' for index in range(keys))
    path = tmp_path / "many.json"
    path.write_text(f'{{{body}, "k{keys - 1}": 1}}')

    def refused() -> str:
        try:
            load_result(path)
        except ResultFileError as error:
            return str(error)
        return "read"

    assert "duplicate key" in benchmark(refused)
