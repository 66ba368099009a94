"""The one result schema: what `run` produces, what is stored, validated, compared and drawn."""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar, Union

from bench.config.settings import RunConfig

SCHEMA_VERSION = 2
T = TypeVar("T")


class ResultFileError(ValueError):
    """A file that is not a usable results file; the message says why."""


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
    # In the run's precision, measured in a separate process, cached per machine (measure.peak).
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
