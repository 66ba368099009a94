"""The timed run: trains through mnist_core, times each epoch, returns the result; writes
nothing (storing is bench.storage's, drawing bench.show's)."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import torch
from torch.utils.data import DataLoader

from bench.config.devices import kind_of
from bench.config.resolve import global_batch_size, resolve
from bench.config.settings import RunConfig
from bench.measure.distributed import aggregate
from bench.measure.disturbance import Sampler, crowding
from bench.measure.environment import fingerprint
from bench.measure.memory import Scope, peak_rss_mb, reset_peak_rss
from bench.measure.peak import PeakProbeError, cached_peak, peak_machine
from bench.measure.timing import BLOCK_STEPS, BlockClock, timed
from bench.storage.records import Peak
from bench.storage.results import (
    Arithmetic,
    DataInfo,
    DistributedInfo,
    EpochMetrics,
    ModelInfo,
    RunResult,
    Summary,
    new_run_id,
)
from bench.storage.throughput import EPOCH_MEDIAN, HEADLINE, estimate, steady_blocks
from mnist_core import (
    PRECISIONS,
    STRICT,
    WARN_ONLY,
    EvalResult,
    MnistData,
    Net,
    NonFiniteLossError,
    TensorLoader,
    determinism_mode,
    evaluate,
    make_loader,
    make_optimizer,
    make_train_step,
    parameter_count,
    seed_everything,
    set_float32_precision,
    state_dict_digest,
    train_epoch,
    training_flops_per_sample,
)
from mnist_core.distributed import Rank, mean_over_ranks, wrap
from mnist_core.graphs import GraphedTrainStep
from mnist_core.train import TrainStep


class Reporter(Protocol):
    def run_started(self, config: RunConfig) -> None: ...
    def epoch_started(self, epoch: int, steps: int) -> None: ...
    def step_done(self, step: int) -> None: ...
    def epoch_finished(self, metrics: EpochMetrics) -> None: ...
    def warn(self, message: str) -> None: ...


@dataclass
class Measurement:
    result: RunResult
    weights: dict[str, torch.Tensor] | None  # the final state_dict on the CPU, when kept


def set_up_arithmetic(
    config: RunConfig, device: torch.device
) -> tuple[Arithmetic, torch.Generator]:
    """Set fp32 precision and kernel determinism for `config` on `device`, seed every RNG;
    return what took effect and the data generator."""
    settings = set_float32_precision(config.precision)
    mode = determinism_mode(config.deterministic, kind_of(device.type).bitwise_reruns)
    generator = seed_everything(config.seed, mode)
    autocast = PRECISIONS[config.precision]
    arithmetic = Arithmetic(
        precision=config.precision,
        autocast_dtype=str(autocast).removeprefix("torch.") if autocast else None,
        cuda_matmul_fp32=settings.cuda_matmul,
        cudnn_conv_fp32=settings.cudnn_conv,
        mkldnn_matmul_fp32=settings.mkldnn_matmul,
        mkldnn_conv_fp32=settings.mkldnn_conv,
        determinism=mode,
        bitwise_reruns=mode == STRICT,
    )
    return arithmetic, generator


def build_model(config: RunConfig, device: torch.device) -> tuple[Net, torch.optim.Adam]:
    """The seeded network on `device` in the config's memory format, and its optimizer."""
    assert config.optimizer is not None, "resolve the config first"
    model = Net().to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, make_optimizer(model, config.lr, config.optimizer)


@dataclass
class _Training:
    """What the epoch loop needs: a step, fresh batches per epoch, and how many steps."""

    step: TrainStep
    batches: Callable[[], Iterable[tuple[torch.Tensor, ...]]]
    steps: int


def _set_up_training(
    config: RunConfig,
    model: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Adam,
    train_loader: TensorLoader | DataLoader,
) -> _Training:
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
        step = make_train_step(
            torch.compile(forward) if config.compile else forward, optimizer, config.precision
        )

        def batches() -> Iterable[tuple[torch.Tensor, ...]]:
            return train_loader

    steps = min(full_batches, config.max_steps_per_epoch or full_batches)
    return _Training(step, batches, steps)


def _summarise(
    config: RunConfig,
    epochs: list[EpochMetrics],
    flops_per_sample: int,
    device: torch.device,
    peak: Peak | None,
    rss_scope: Scope,
    steps: int,
) -> Summary:
    estimator = HEADLINE if steady_blocks(epochs) else EPOCH_MEDIAN
    steady_images_per_s = estimate(epochs, estimator)
    train_flops_per_s = flops_per_sample * steady_images_per_s
    reached = next((m for m in epochs if m.test_accuracy_pct >= config.target_acc_pct), None)
    counted = kind_of(device.type).peak_memory
    peak_device = torch.accelerator.max_memory_allocated(device) / 2**20 if counted else None
    return Summary(
        warmup_train_s=epochs[0].train_s,
        steady_train_images_per_s=steady_images_per_s,
        eval_images_per_s=statistics.median(m.eval_images_per_s for m in epochs),
        total_train_s=sum(m.train_s for m in epochs),
        final_test_accuracy_pct=epochs[-1].test_accuracy_pct,
        final_test_loss=epochs[-1].test_loss,
        time_to_target_s=sum(m.train_s for m in epochs[: reached.epoch]) if reached else None,
        epochs_to_target=reached.epoch if reached else None,
        peak_host_rss_mb=peak_rss_mb(),
        peak_host_rss_scope=rss_scope,
        peak_device_mem_mb=peak_device,
        train_flops_per_s=train_flops_per_s,
        peak_matmul_flops_per_s=peak.matmul_flops_per_s if peak else None,
        peak_measured_utc=peak.measured_utc if peak else None,
        mfu_pct=_mfu_pct(train_flops_per_s, peak, config.world_size),
        estimator=estimator,
        block_steps=min(BLOCK_STEPS, steps),
    )


def _mfu_pct(train_flops_per_s: float, peak: Peak | None, world_size: int) -> float | None:
    """The achieved FLOP/s as a share of the peak; None without a peak, or where the run beat
    it: a peak below what the network achieves was measured on a busy machine, and a share
    above 100 % would only mislead."""
    if peak is None:
        return None
    # Each device (rank) has its own peak; the achieved FLOP/s are all devices'.
    share = 100 * train_flops_per_s / (peak.matmul_flops_per_s * world_size)
    return share if share <= 100 else None


def _notes(
    config: RunConfig,
    data: MnistData,
    steps: int,
    arithmetic: Arithmetic,
    distributed: DistributedInfo | None,
) -> list[str]:
    """What a reader of the figures should know about how they came about."""
    notes = []
    if arithmetic.determinism == WARN_ONLY:
        notes.append(
            f"{config.device} has no deterministic kernel for every op this network needs: "
            "determinism ran warn-only, so the same seed may not give bitwise the same weights"
        )
    if not data.canonical:
        notes.append("the data is not the canonical MNIST (a subset or other IDX files)")
    cores = os.cpu_count() or 1
    if config.threads is not None and config.threads > cores:
        notes.append(f"{config.threads} threads asked for on {cores} CPU cores: oversubscribed")
    if steps * global_batch_size(config) < len(data.train):
        notes.append(f"each epoch trained {steps} steps, not the whole training set")
    if distributed and not distributed.weights_identical:
        notes.append("the ranks ended with different weights")
    return notes


def _run_epochs(
    config: RunConfig,
    model: Net,
    training: _Training,
    test_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    data: MnistData,
    reporter: Reporter | None,
    rank: Rank | None,
) -> tuple[list[EpochMetrics], list[int], list[float], EvalResult]:
    """Train, then evaluate, once per epoch; each timed apart between device syncs. Returns
    the epochs' figures, the images each epoch trained on (this rank's), the step losses and
    the last evaluation."""
    device = next(model.parameters()).device
    epochs: list[EpochMetrics] = []
    epoch_images: list[int] = []
    step_losses: list[float] = []
    clock = BlockClock(device, min(BLOCK_STEPS, training.steps))

    def on_step(index: int, images: int) -> None:
        clock.step_done(index, images)
        if reporter:
            reporter.step_done(index)

    def train() -> torch.Tensor:
        clock.start()
        return train_epoch(
            training.step,
            training.batches(),
            training.steps,
            on_step,
            mean_over_ranks if rank else None,
        )

    for epoch in range(1, config.epochs + 1):
        if reporter:
            reporter.epoch_started(epoch, training.steps)
        losses, train_s = timed(device, train)
        evaluation, eval_s = timed(device, lambda: evaluate(model, test_loader, config.precision))
        if not math.isfinite(evaluation.loss):  # the epoch's last update can diverge unseen
            raise NonFiniteLossError(
                f"test loss became {evaluation.loss} after epoch {epoch}: the last steps diverged"
            )
        epoch_losses = losses.tolist()
        step_losses.extend(epoch_losses)
        epoch_images.append(clock.images)
        metrics = EpochMetrics(
            epoch=epoch,
            train_s=train_s,
            # This rank's images over its time; a data-parallel run replaces it at the end with
            # all ranks' images over the slowest rank's time.
            train_images_per_s=clock.images / train_s,
            block_images_per_s=clock.block_rates(),
            train_loss_mean=sum(epoch_losses) / len(epoch_losses),
            eval_s=eval_s,
            eval_images_per_s=len(data.test) / eval_s,
            test_loss=evaluation.loss,
            test_accuracy_pct=evaluation.accuracy_pct,
        )
        epochs.append(metrics)
        if reporter:
            reporter.epoch_finished(metrics)
    return epochs, epoch_images, step_losses, evaluation


def benchmark(
    config: RunConfig,
    data: MnistData,
    *,
    reporter: Reporter | None = None,
    rank: Rank | None = None,
    keep_weights: bool = False,
) -> Measurement | None:
    """Set up, time each epoch, assemble the result.

    In a data-parallel run every rank calls this; rank 0 returns the measurement, the others
    None.
    """
    started = datetime.now(UTC)
    config = resolve(config)
    device = torch.device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    environment = fingerprint(device)
    # The CPU the run itself asks for: its threads on the CPU, a feeding thread elsewhere.
    asked = (environment.threads if kind_of(device.type).host_threads else 1) * config.world_size
    if reporter and (crowded := crowding(asked)):  # said before training starts
        reporter.warn(crowded)
    notes = []
    peak: Peak | None = None
    try:
        peak, not_cached = cached_peak(
            device, peak_machine(environment), config.precision, environment.threads
        )
        notes += [not_cached] if not_cached else []
    except PeakProbeError as error:
        notes.append(f"no MFU: {error}")
    arithmetic, generator = set_up_arithmetic(config, device)
    model, optimizer = build_model(config, device)
    shard = (rank.rank, rank.world_size) if rank else (0, 1)
    train_loader = make_loader(
        config.loader, data.train, global_batch_size(config), device, generator, shard
    )
    test_loader = make_loader(config.loader, data.test, config.eval_batch_size, device)
    if kind_of(device.type).peak_memory:
        torch.accelerator.reset_peak_memory_stats(device)
    forward = wrap(model, device) if rank else model
    training = _set_up_training(config, model, forward, optimizer, train_loader)
    rss_scope = reset_peak_rss()

    with Sampler(asked) as sampler:
        epochs, epoch_images, step_losses, evaluation = _run_epochs(
            config, model, training, test_loader, data, reporter, rank
        )
    disturbance = sampler.disturbance()
    if disturbance.disturbed:
        notes.append(
            f"disturbed: {'; '.join(disturbance.reasons)}; these timings are not a clean "
            "measurement"
        )

    weights_sha256 = state_dict_digest(model)
    distributed = None
    if rank:
        epochs, distributed = aggregate(config, rank, device, epochs, epoch_images, weights_sha256)
        if not rank.is_main:
            return None
    with torch.device("meta"):
        flops = training_flops_per_sample(Net(), config.batch_size)
    summary = _summarise(config, epochs, flops, device, peak, rss_scope, training.steps)
    if peak is not None and summary.mfu_pct is None:
        notes.append(
            f"no MFU: the run achieved {summary.train_flops_per_s / 1e9:,.1f} GFLOP/s, more than "
            f"the cached peak of {peak.matmul_flops_per_s / 1e9:,.1f} (measured "
            f"{peak.measured_utc}, most likely on a busy machine); re-measure it with "
            f"`mnist-bench env -d {config.device} --peak --precision {config.precision}` "
            "on a quiet machine"
        )
    result = RunResult(
        run_id=new_run_id(config, started),
        created_utc=started.isoformat(timespec="seconds"),
        config=config,
        environment=environment,
        arithmetic=arithmetic,
        model=ModelInfo(parameters=parameter_count(model), train_flops_per_sample=flops),
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
        weights_sha256=weights_sha256,
        distributed=distributed,
        disturbance=disturbance,
        notes=_notes(config, data, training.steps, arithmetic, distributed) + notes,
    )
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()} if keep_weights else None
    return Measurement(result, weights)
