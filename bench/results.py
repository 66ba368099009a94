"""The one result schema: what `run` produces, what is stored, validated, compared and drawn."""

from __future__ import annotations

import json
import os
import tempfile
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, Union

SCHEMA_VERSION = 2
T = TypeVar("T")


class ResultFileError(ValueError):
    """A file that is not a usable results file; the message says why."""


@dataclass
class RunConfig:
    device: str  # as resolved: cpu, cuda:0, mps
    epochs: int = 5
    batch_size: int = 100
    eval_batch_size: int = 1000
    lr: float = 1e-3
    seed: int = 0
    loader: str = "tensor"
    deterministic: bool = True
    precision: str = "fp32"
    target_acc_pct: float = 99.0
    threads: int | None = None  # torch's CPU intra-op threads; None leaves torch's default
    max_steps_per_epoch: int | None = None  # a cap for smoke runs; None trains full epochs
    # None = the device's default (bench.runner.DEVICE_DEFAULTS); results store what ran.
    channels_last: bool | None = None
    optimizer: str | None = None
    compile: bool = False
    cuda_graphs: bool = False
    world_size: int = 1  # data-parallel processes (torchrun); batch_size is then global...
    per_rank_batch: bool = False  # ...unless this is set: each rank takes batch_size (weak scaling)
    model: str = "seed-cnn"


@dataclass
class Environment:
    torch: str
    torchvision: str
    cuda: str | None
    cudnn: int | None
    device_type: str
    device_name: str
    cpu_name: str
    cpu_count: int
    threads: int
    os: str
    python: str
    git_commit: str | None
    gpu_driver: str | None = None  # the NVIDIA driver (nvidia-smi), CUDA only
    gpu_sm_count: int | None = None  # streaming multiprocessors, CUDA only


@dataclass
class Arithmetic:
    """What arithmetic the run did, as torch reported it after setting it up."""

    precision: str  # the --precision asked for
    autocast_dtype: str | None  # bfloat16 / float16 under autocast, else None
    cuda_matmul_fp32: str  # torch's fp32_precision per backend: "ieee" or "tf32"
    cudnn_conv_fp32: str
    mkldnn_matmul_fp32: str
    mkldnn_conv_fp32: str
    determinism: str  # strict, warn-only (the device lacks a deterministic kernel) or off
    bitwise_reruns: bool  # strict determinism: the same seed must give the same weights


@dataclass
class ModelInfo:
    parameters: int
    train_flops_per_sample: int


@dataclass
class DataInfo:
    source: str
    sha256: str
    canonical: bool
    train_samples: int
    test_samples: int


@dataclass
class EpochMetrics:
    epoch: int
    train_s: float
    train_images_per_s: float
    train_loss_mean: float
    eval_s: float
    eval_images_per_s: float
    test_loss: float
    test_accuracy_pct: float


@dataclass
class Summary:
    warmup_train_s: float  # epoch 1, which pays for allocation and kernel selection
    steady_train_images_per_s: float  # median of epochs 2..n (epoch 1 when it is the only one)
    eval_images_per_s: float  # median over epochs
    total_train_s: float
    final_test_accuracy_pct: float
    final_test_loss: float
    time_to_target_s: float | None  # cumulative training time until accuracy >= target
    epochs_to_target: int | None
    peak_host_rss_mb: float  # peak resident set size while training (see scope)
    peak_host_rss_scope: str  # "training" (Linux: reset before epoch 1) or "process" (lifetime)
    peak_device_mem_mb: float | None  # CUDA max allocated; None off CUDA
    train_flops_per_s: float  # training FLOPs per sample × steady images/s
    # Measured in the run's precision, in a separate process, cached per machine (bench.peak).
    peak_matmul_flops_per_s: float | None = None
    peak_measured_utc: str | None = None
    mfu_pct: float | None = None  # train_flops_per_s as a share of that peak


@dataclass
class RankFigures:
    rank: int
    host: str
    device: str
    train_images_per_s: float  # this rank's images / its own training time, steady median
    weights_sha256: str


@dataclass
class DistributedInfo:
    world_size: int
    nodes: int
    backend: str
    scaling: str  # "strong" (global batch fixed) or "weak" (per-rank batch fixed)
    global_batch_size: int
    per_rank_batch_size: int
    global_train_images_per_s: float  # all images / the slowest rank's time, steady median
    ranks: list[RankFigures]
    weights_identical: bool
    reference_run: str | None = None  # a single-process run or baseline of the same config
    reference_train_images_per_s: float | None = None
    scaling_efficiency_pct: float | None = None  # global ÷ (world size × reference)


@dataclass
class RunResult:
    run_id: str
    created_utc: str
    config: RunConfig
    environment: Environment
    arithmetic: Arithmetic
    model: ModelInfo
    data: DataInfo
    epochs: list[EpochMetrics]
    summary: Summary
    step_losses: list[float]
    per_class_accuracy_pct: list[float | None]
    confusion: list[list[int]]
    weights_sha256: str
    weights_file: str | None = None
    distributed: DistributedInfo | None = None
    schema_version: int = SCHEMA_VERSION
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunResult:
        if not isinstance(data, dict):
            raise ResultFileError("not a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultFileError(f"schema version {version!r}, this tool reads {SCHEMA_VERSION}")
        return build_dataclass(cls, data, "")


def _check(annotation: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(option, value, where)
            except ResultFileError:
                continue
        raise ResultFileError(f"{where}: unexpected value {value!r:.40}")
    if origin is list:
        if not isinstance(value, list):
            raise ResultFileError(f"{where}: expected a list")
        (item,) = typing.get_args(annotation)
        return [_check(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(annotation, type) and is_dataclass(annotation):
        return build_dataclass(annotation, value, where)
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, str, bool) and type(value) is annotation:
        return value
    raise ResultFileError(f"{where}: expected {getattr(annotation, '__name__', annotation)}")


def build_dataclass(cls: type[T], data: Any, where: str = "") -> T:
    """`cls` from a JSON object, checking every field's presence and type."""
    if not isinstance(data, dict):
        raise ResultFileError(f"{where or 'result'}: expected an object")
    hints = typing.get_type_hints(cls)
    values = {}
    for spec in fields(cls):  # type: ignore[arg-type]
        key = f"{where}.{spec.name}" if where else spec.name
        if spec.name in data:
            values[spec.name] = _check(hints[spec.name], data[spec.name], key)
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise ResultFileError(f"missing field {key}")
    return cls(**values)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside `path`; renamed onto it only when the block finishes without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; a result is an ordinary file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=1) + "\n")


def save_result(result: RunResult, folder: Path) -> Path:
    path = folder / f"{result.run_id}.json"
    write_json_atomic(path, result.to_dict())
    return path


def json_files(root: Path) -> list[Path]:
    """`root` itself when it is a file, else every .json file below it."""
    return sorted(root.rglob("*.json")) if root.is_dir() else [root]


def read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ResultFileError(f"unreadable: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultFileError(f"not JSON ({error.msg} at line {error.lineno})") from None


def load_result(path: Path) -> RunResult:
    return RunResult.from_dict(read_json(path))


def ensure_writable(folder: Path) -> None:
    """Fail before training, not after, when results could not be saved."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ResultFileError(f"cannot write results to {folder}: {error.strerror}") from None
