"""Fixtures: tiny MNIST-format files, so the real loading code runs without the real data."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results import RunResult, load_result

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / "shared" / "mnist"


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    magic = 0x800 | array.ndim  # 0x08 = unsigned byte
    payload = struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def make_tiny_mnist(
    folder: Path, train: int = 300, test: int = 100, compress: bool = True, seed: int = 0
) -> Path:
    """Learnable stand-in data: each class lights up its own block of pixels, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
        for index, label in enumerate(labels):
            row, col = divmod(int(label), 5)
            images[index, 4 + row * 10 : 12 + row * 10, 2 + col * 5 : 6 + col * 5] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return folder


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Iterator[Path]:
    """Keep the tests' cached peak probes out of the user's cache (one probe per session)."""
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    return make_tiny_mnist(tmp_path / "mnist")


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    candidates = [os.environ.get("MNIST_BENCH_DATA"), str(SHARED_MNIST)]
    for candidate in filter(None, candidates):
        if any(Path(candidate).glob("train-images-idx3-ubyte*")) or any(
            Path(candidate).glob("MNIST/raw/train-images-idx3-ubyte*")
        ):
            return Path(candidate)
    pytest.skip("real MNIST not found: set MNIST_BENCH_DATA or provide ../shared/mnist")


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> RunResult:
    """One real result of a short run on tiny data, to derive variants from."""
    folder = tmp_path_factory.mktemp("template")
    data = make_tiny_mnist(folder / "mnist")
    outcome = CliRunner().invoke(
        app,
        [
            "run",
            "-d",
            "cpu",
            "--epochs",
            "2",
            "--max-steps",
            "2",
            "--data-dir",
            str(data),
            "--out",
            str(folder / "out"),
            "--no-download",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    (path,) = (folder / "out").glob("*.json")
    return load_result(path)
