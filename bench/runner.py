"""The timed runner: trains through mnist_core, measures each epoch, and records a RunResult."""

from __future__ import annotations

import resource
import secrets
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader

from bench.environment import fingerprint
from bench.errors import ConfigError
from bench.peak import measure_peak
from bench.plots import plot_loss
from bench.results import (
    DataInfo,
    EpochMetrics,
    ModelInfo,
    RunConfig,
    RunResult,
    Summary,
    atomic_path,
    ensure_writable,
    save_result,
)
from mnist_core import (
    LOADERS,
    OPTIMIZERS,
    PRECISIONS,
    MnistData,
    Net,
    TensorLoader,
    evaluate,
    load_mnist,
    make_loader,
    make_optimizer,
    make_train_step,
    parameter_count,
    resolve_device,
    seed_everything,
    state_dict_digest,
    synchronize,
    train_epoch,
    training_flops_per_sample,
)
from mnist_core.graphs import GraphedTrainStep
from mnist_core.train import TrainStep


class Reporter(Protocol):
    def run_started(self, config: RunConfig) -> None: ...
    def epoch_started(self, epoch: int, steps: int) -> None: ...
    def step_done(self, step: int) -> None: ...
    def epoch_finished(self, metrics: EpochMetrics) -> None: ...


@dataclass
class RecordedRun:
    result: RunResult
    result_path: Path
    plot_path: Path


# The fastest combination measured per device that keeps determinism and accuracy (README,
# "Performance"). Channels-last speeds up the CPU's oneDNN convolutions and pooling; the fused
# Adam replaces a dozen small kernels with one. CUDA keeps contiguous memory: unmeasured here.
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {"channels_last": True, "optimizer": "adam-fused"},
    "cuda": {"channels_last": False, "optimizer": "adam-fused"},
}
FALLBACK_DEFAULTS: dict[str, Any] = {"channels_last": False, "optimizer": "adam"}


def for_device(config: RunConfig, device: str) -> RunConfig:
    """`config` on `device`, each option left at None set to that device's default."""
    defaults = dict(DEVICE_DEFAULTS.get(device.split(":")[0], FALLBACK_DEFAULTS))
    if config.cuda_graphs:
        defaults["optimizer"] = "adam-capturable"
    chosen = {name: value for name, value in defaults.items() if getattr(config, name) is None}
    return replace(config, device=device, **chosen)


def validate(config: RunConfig) -> None:
    """Refuse, before any work, a config that cannot describe a run on its device."""
    positive = {
        "epochs": config.epochs,
        "batch size": config.batch_size,
        "eval batch size": config.eval_batch_size,
        "lr": config.lr,
    }
    for name, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if config.threads is not None and config.threads < 1:
        raise ConfigError(f"threads must be at least 1, got {config.threads}")
    if config.max_steps_per_epoch is not None and config.max_steps_per_epoch < 1:
        raise ConfigError(
            f"max steps per epoch must be at least 1, got {config.max_steps_per_epoch}"
        )
    if config.loader not in LOADERS:
        raise ConfigError(f"unknown loader {config.loader!r}: use {' or '.join(LOADERS)}")
    if config.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {config.precision!r}: use {', '.join(PRECISIONS)}")
    on_cuda = config.device.startswith("cuda")
    if config.precision == "fp16" and not on_cuda:
        raise ConfigError("fp16 training needs CUDA; use bf16 elsewhere")
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {config.optimizer!r}: use {', '.join(OPTIMIZERS)}")
    if config.cuda_graphs:
        if config.optimizer != "adam-capturable":
            raise ConfigError("--cuda-graphs needs --optimizer adam-capturable")
        if not on_cuda:
            raise ConfigError("--cuda-graphs needs a CUDA device")
        if config.loader != "tensor" or config.compile or config.precision == "fp16":
            raise ConfigError("--cuda-graphs needs the tensor loader, no --compile and no fp16")


def _run_id(config: RunConfig, started: datetime) -> str:
    device = config.device.replace(":", "")
    return (
        f"{started:%Y%m%dT%H%M%SZ}-{device}-{config.loader}-s{config.seed}-{secrets.token_hex(2)}"
    )


def _timed(device: torch.device, work):
    synchronize(device)
    start = time.perf_counter()
    value = work()
    synchronize(device)
    return value, time.perf_counter() - start


def _summarise(
    config: RunConfig, epochs: list[EpochMetrics], flops_per_sample: int, device: torch.device
) -> Summary:
    steady = epochs[1:] or epochs
    steady_images_per_s = statistics.median(m.train_images_per_s for m in steady)
    time_to_target = epochs_to_target = None
    elapsed = 0.0
    for metrics in epochs:
        elapsed += metrics.train_s
        if metrics.test_accuracy_pct >= config.target_acc_pct:
            time_to_target, epochs_to_target = elapsed, metrics.epoch
            break
    peak_device = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return Summary(
        warmup_train_s=epochs[0].train_s,
        steady_train_images_per_s=steady_images_per_s,
        eval_images_per_s=statistics.median(m.eval_images_per_s for m in epochs),
        total_train_s=sum(m.train_s for m in epochs),
        final_test_accuracy_pct=epochs[-1].test_accuracy_pct,
        final_test_loss=epochs[-1].test_loss,
        time_to_target_s=time_to_target,
        epochs_to_target=epochs_to_target,
        # ru_maxrss is in KiB on Linux.
        peak_host_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        peak_device_mem_mb=peak_device,
        train_flops_per_s=flops_per_sample * steady_images_per_s,
    )


def _training(
    config: RunConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Adam,
    train_loader: TensorLoader | DataLoader,
) -> tuple[TrainStep, Callable, int]:
    """The step function, a fresh-batches-per-epoch factory, and the steps per epoch."""
    full_batches = len(train_loader)
    if config.cuda_graphs:
        assert isinstance(train_loader, TensorLoader)
        # A graph has one batch shape, so a partial last batch is dropped.
        full_batches = len(train_loader.labels) // config.batch_size
        step: TrainStep = GraphedTrainStep(
            model,
            optimizer,
            train_loader.images,
            train_loader.labels,
            config.batch_size,
            config.precision,
        )

        def batches() -> Iterable[tuple[torch.Tensor, ...]]:
            return ((index,) for index in train_loader.index_batches())
    else:
        forward = torch.compile(model) if config.compile else model
        step = make_train_step(forward, optimizer, config.precision)

        def batches() -> Iterable[tuple[torch.Tensor, ...]]:
            return train_loader

    return step, batches, min(full_batches, config.max_steps_per_epoch or full_batches)


def benchmark(
    config: RunConfig,
    data: MnistData,
    reporter: Reporter | None = None,
    weights_dir: Path | None = None,
) -> RunResult:
    """Train and evaluate once per epoch, timing training and evaluation apart."""
    started = datetime.now(timezone.utc)
    config = for_device(config, config.device)
    assert config.optimizer is not None
    device = torch.device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    environment = fingerprint(device)
    peak = measure_peak(device, config.precision)  # before seeding: the probe draws random data
    generator = seed_everything(config.seed, config.deterministic)
    model = Net().to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config.lr, config.optimizer)
    train_loader = make_loader(config.loader, data.train, config.batch_size, device, generator)
    test_loader = make_loader(config.loader, data.test, config.eval_batch_size, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step, batches, steps = _training(config, model, optimizer, train_loader)

    epochs: list[EpochMetrics] = []
    step_losses: list[float] = []
    for epoch in range(1, config.epochs + 1):
        if reporter:
            reporter.epoch_started(epoch, steps)
        losses, train_s = _timed(
            device,
            lambda: train_epoch(step, batches(), steps, reporter.step_done if reporter else None),
        )
        evaluation, eval_s = _timed(device, lambda: evaluate(model, test_loader, config.precision))
        epoch_losses = losses.tolist()
        step_losses.extend(epoch_losses)
        trained_images = min(steps * config.batch_size, len(data.train))
        metrics = EpochMetrics(
            epoch=epoch,
            train_s=train_s,
            train_images_per_s=trained_images / train_s,
            train_loss_mean=sum(epoch_losses) / len(epoch_losses),
            eval_s=eval_s,
            eval_images_per_s=len(data.test) / eval_s,
            test_loss=evaluation.loss,
            test_accuracy_pct=evaluation.accuracy_pct,
        )
        epochs.append(metrics)
        if reporter:
            reporter.epoch_finished(metrics)

    with torch.device("meta"):
        flops_per_sample = training_flops_per_sample(Net(), config.batch_size)
    summary = _summarise(config, epochs, flops_per_sample, device)
    summary.peak_matmul_flops_per_s = peak.matmul_flops_per_s
    summary.mfu_pct = 100 * summary.train_flops_per_s / peak.matmul_flops_per_s
    result = RunResult(
        run_id=_run_id(config, started),
        created_utc=started.isoformat(timespec="seconds"),
        config=config,
        environment=environment,
        model=ModelInfo(parameters=parameter_count(model), train_flops_per_sample=flops_per_sample),
        data=DataInfo(
            source=str(data.source),
            sha256=data.sha256,
            canonical=data.canonical,
            train_samples=len(data.train),
            test_samples=len(data.test),
        ),
        epochs=epochs,
        summary=summary,
        step_losses=step_losses,
        per_class_accuracy_pct=evaluation.per_class_accuracy_pct,
        confusion=evaluation.confusion,
        weights_sha256=state_dict_digest(model),
    )
    if weights_dir is not None:
        weights_path = weights_dir / f"{result.run_id}-weights.pt"
        with atomic_path(weights_path) as tmp:
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
        result.weights_file = weights_path.name
    return result


def run_all(
    config: RunConfig,
    devices: Sequence[str],
    loaders: Sequence[str],
    out_dir: Path,
    data_dir: Path | None,
    download: bool,
    save_weights: bool = False,
    reporter: Reporter | None = None,
) -> list[RecordedRun]:
    """Check everything a user can get wrong, then benchmark each device × loader in turn.

    Each finished run is written (JSON, then its plot) before the next one starts.
    """
    resolved = list(dict.fromkeys(str(resolve_device(name)) for name in devices))
    configs = [
        for_device(replace(config, loader=loader), device)
        for device in resolved
        for loader in dict.fromkeys(loaders)
    ]
    for run_config in configs:
        validate(run_config)
    ensure_writable(out_dir)
    data = load_mnist(data_dir, download=download)
    recorded = []
    for run_config in configs:
        if reporter:
            reporter.run_started(run_config)
        result = benchmark(run_config, data, reporter, out_dir if save_weights else None)
        result_path = save_result(result, out_dir)
        plot_path = plot_loss(result, out_dir / f"{result.run_id}-loss.png")
        recorded.append(RecordedRun(result, result_path, plot_path))
    return recorded
