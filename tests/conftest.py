"""Fixtures: tiny MNIST-format files, so the real loading code runs without the real data."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.config.settings import RunConfig
from bench.storage.files import load_result
from bench.storage.results import EpochMetrics, RunResult

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


COMMITTED_RESULT = Path(__file__).parent / "data" / "cpu-tiny-result.json"
# A real 5-epoch CUDA run (NVIDIA H200, seed 1, docs/gpu.md), the machine of the CUDA baselines.
COMMITTED_CUDA_RESULT = Path(__file__).parent / "data" / "cuda-h200-result.json"


def record_committed_result(folder: Path = COMMITTED_RESULT.parent) -> Path:
    """Re-record tests/data's result (when what it measures changes; a schema change alone:
    upgrade_committed_result): a real CPU run of 2 epochs × 2 steps on the tiny data.
    `python -c "from tests.conftest import record_committed_result as r; r()"`"""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        data = make_tiny_mnist(Path(scratch) / "mnist")
        out = Path(scratch) / "out"
        args = ["run", "-d", "cpu", "--epochs", "2", "--max-steps", "2", "--seed", "0"]
        args += ["--data-dir", str(data), "--out", str(out), "--no-download"]
        outcome = CliRunner().invoke(app, args)
        assert outcome.exit_code == 0, outcome.output
        (path,) = out.glob("*.json")
        result = load_result(path)
    result.data.source = "tests/conftest.py:make_tiny_mnist"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / COMMITTED_RESULT.name
    target.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return target


def upgrade_committed_result(path: Path = COMMITTED_RESULT) -> Path:
    """Bring tests/data's result up to the current schema by the upgrade steps that read old
    files, keeping what it measured (re-recording runs it again, on whichever machine this
    is, so its digests and figures change with the machine). `python -c "from tests.conftest
    import upgrade_committed_result as u; u()"`"""
    result = RunResult.from_dict(json.loads(path.read_text()))
    path.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return path


@pytest.fixture
def template() -> RunResult:
    """A real result of a short CPU run on tiny data, committed in tests/data; a fresh copy
    per test, to derive variants from without training."""
    return load_result(COMMITTED_RESULT)


def edited(result: RunResult, changes: dict[str, Any]) -> RunResult:
    """`result` with fields changed by dotted path ({"config.seed": 1, "epochs": [...]}) and
    checked once, as a whole, the way a file is: fields that must agree change together."""
    document = copy.deepcopy(result.to_dict())
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        target[last] = _plain(value)
    return RunResult.from_dict(document)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def renumbered(epochs: list[EpochMetrics], count: int) -> list[EpochMetrics]:
    """`count` epochs' figures, numbered 1…count, cycling through `epochs`."""
    return [dataclasses.replace(epochs[i % len(epochs)], epoch=i + 1) for i in range(count)]


def measure(config: RunConfig, data) -> RunResult:
    """One single-process timed run, its result."""
    from bench.measure.run import benchmark

    measurement = benchmark(config, data)
    assert measurement is not None
    return measurement.result
