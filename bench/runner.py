"""The timed runner: trains through mnist_core, measures each epoch, and records a RunResult."""

from __future__ import annotations

import secrets
import socket
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader

from bench.baselines import load_baselines, single_process_reference
from bench.environment import fingerprint
from bench.errors import ConfigError
from bench.memory import peak_rss_mb, reset_peak_rss
from bench.peak import Peak, PeakProbeError, cached_peak
from bench.plots import plot_loss
from bench.results import (
    Arithmetic,
    DataInfo,
    DistributedInfo,
    EpochMetrics,
    ModelInfo,
    RankFigures,
    RunConfig,
    RunResult,
    Summary,
    atomic_path,
    ensure_writable,
    load_result,
    save_result,
)
from bench.timing import timed
from mnist_core import (
    LOADERS,
    OPTIMIZERS,
    PRECISIONS,
    STRICT,
    WARN_ONLY,
    MnistData,
    Net,
    TensorLoader,
    determinism_mode,
    evaluate,
    load_mnist,
    make_loader,
    make_optimizer,
    make_train_step,
    parameter_count,
    resolve_device,
    seed_everything,
    set_float32_precision,
    state_dict_digest,
    train_epoch,
    training_flops_per_sample,
)
from mnist_core.distributed import (
    Rank,
    backend_for,
    gather_to_all,
    init_process_group,
    mean_over_ranks,
    rank_from_environment,
    shutdown,
    wrap,
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
    if config.precision == "tf32" and not on_cuda:
        raise ConfigError("tf32 is CUDA's TensorFloat-32 mode; use fp32 or bf16 elsewhere")
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {config.optimizer!r}: use {', '.join(OPTIMIZERS)}")
    if config.world_size > 1 and (config.loader != "tensor" or config.cuda_graphs):
        raise ConfigError("a distributed run needs the tensor loader and no --cuda-graphs")
    if config.cuda_graphs:
        if config.optimizer != "adam-capturable":
            raise ConfigError("--cuda-graphs needs --optimizer adam-capturable")
        if not on_cuda:
            raise ConfigError("--cuda-graphs needs a CUDA device")
        if config.loader != "tensor" or config.compile or config.precision == "fp16":
            raise ConfigError("--cuda-graphs needs the tensor loader, no --compile and no fp16")


def set_up_arithmetic(
    config: RunConfig, device: torch.device
) -> tuple[Arithmetic, torch.Generator]:
    """Set fp32 precision and kernel determinism for `config` on `device`, seed every RNG;
    return what took effect and the data generator."""
    settings = set_float32_precision(config.precision)
    mode = determinism_mode(device.type, config.deterministic)
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
    assert config.optimizer is not None, "resolve the config with for_device first"
    model = Net().to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, make_optimizer(model, config.lr, config.optimizer)


def _run_id(config: RunConfig, started: datetime) -> str:
    device = config.device.replace(":", "")
    return (
        f"{started:%Y%m%dT%H%M%SZ}-{device}-{config.loader}-s{config.seed}-{secrets.token_hex(2)}"
    )


def steady_median(per_epoch: Sequence[float]) -> float:
    """The median over epochs 2..n: epoch 1 pays for warm-up (itself when it is the only one)."""
    return statistics.median(per_epoch[1:] or per_epoch)


def _summarise(
    config: RunConfig,
    epochs: list[EpochMetrics],
    flops_per_sample: int,
    device: torch.device,
    peak: Peak | None,
    devices_used: int,
    rss_scope: str,
) -> Summary:
    steady_images_per_s = steady_median([m.train_images_per_s for m in epochs])
    train_flops_per_s = flops_per_sample * steady_images_per_s
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
        peak_host_rss_mb=peak_rss_mb(),
        peak_host_rss_scope=rss_scope,
        peak_device_mem_mb=peak_device,
        train_flops_per_s=train_flops_per_s,
        peak_matmul_flops_per_s=peak.matmul_flops_per_s if peak else None,
        peak_measured_utc=peak.measured_utc if peak else None,
        # Each device (rank) has its own peak; the achieved FLOP/s are all devices'.
        mfu_pct=100 * train_flops_per_s / (peak.matmul_flops_per_s * devices_used)
        if peak
        else None,
    )


def _training(
    config: RunConfig,
    model: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Adam,
    train_loader: TensorLoader | DataLoader,
) -> tuple[TrainStep, Callable[[], Iterable[tuple[torch.Tensor, ...]]], int]:
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
        step = make_train_step(
            torch.compile(forward) if config.compile else forward, optimizer, config.precision
        )

        def batches() -> Iterable[tuple[torch.Tensor, ...]]:
            return train_loader

    return step, batches, min(full_batches, config.max_steps_per_epoch or full_batches)


def global_batch_size(config: RunConfig) -> int:
    return config.batch_size * config.world_size if config.per_rank_batch else config.batch_size


def _distributed_info(
    config: RunConfig,
    rank: Rank,
    device: torch.device,
    epochs: list[EpochMetrics],
    global_images: int,
    weights_sha256: str,
) -> DistributedInfo:
    """Gather every rank's epoch times and digest; rewrite `epochs` to the slowest rank's time."""
    own_train_s = [m.train_s for m in epochs]
    rank_images = global_images / rank.world_size
    own_rate = steady_median([rank_images / s for s in own_train_s])
    gathered = gather_to_all(
        (own_train_s, own_rate, socket.gethostname(), str(device), weights_sha256)
    )
    for index, metrics in enumerate(epochs):
        metrics.train_s = max(train_s[index] for train_s, *_ in gathered)
        metrics.train_images_per_s = global_images / metrics.train_s
    digests = {digest for *_, digest in gathered}
    return DistributedInfo(
        world_size=rank.world_size,
        nodes=rank.nodes,
        backend=backend_for(device),
        scaling="weak" if config.per_rank_batch else "strong",
        global_batch_size=global_batch_size(config),
        per_rank_batch_size=global_batch_size(config) // rank.world_size,
        global_train_images_per_s=steady_median([m.train_images_per_s for m in epochs]),
        ranks=[
            RankFigures(
                rank=r, host=host, device=name, train_images_per_s=rate, weights_sha256=digest
            )
            for r, (_, rate, host, name, digest) in enumerate(gathered)
        ],
        weights_identical=len(digests) == 1,
    )


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
    if steps * global_batch_size(config) < len(data.train):
        notes.append(f"each epoch trained {steps} steps, not the whole training set")
    if distributed and not distributed.weights_identical:
        notes.append("the ranks ended with different weights")
    return notes


def benchmark(
    config: RunConfig,
    data: MnistData,
    reporter: Reporter | None = None,
    weights_dir: Path | None = None,
    rank: Rank | None = None,
) -> RunResult | None:
    """Train and evaluate once per epoch, timing training and evaluation apart.

    In a data-parallel run every rank calls this; rank 0 returns the result, the others None.
    """
    started = datetime.now(UTC)
    config = for_device(config, config.device)
    device = torch.device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    environment = fingerprint(device)
    peak_problem = None
    try:
        peak: Peak | None = cached_peak(
            device, environment.device_name, config.precision, environment.threads
        )
    except PeakProbeError as error:
        peak, peak_problem = None, f"no MFU: {error}"
    arithmetic, generator = set_up_arithmetic(config, device)
    model, optimizer = build_model(config, device)
    shard = (rank.rank, rank.world_size) if rank else (0, 1)
    train_loader = make_loader(
        config.loader, data.train, global_batch_size(config), device, generator, shard
    )
    test_loader = make_loader(config.loader, data.test, config.eval_batch_size, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    forward = wrap(model, device) if rank else model
    step, batches, steps = _training(config, model, forward, optimizer, train_loader)
    global_images = min(steps * global_batch_size(config), len(data.train))

    epochs: list[EpochMetrics] = []
    step_losses: list[float] = []
    rss_scope = reset_peak_rss()
    for epoch in range(1, config.epochs + 1):
        if reporter:
            reporter.epoch_started(epoch, steps)
        losses, train_s = timed(
            device,
            lambda: train_epoch(
                step,
                batches(),
                steps,
                reporter.step_done if reporter else None,
                mean_over_ranks if rank else None,
            ),
        )
        evaluation, eval_s = timed(device, lambda: evaluate(model, test_loader, config.precision))
        epoch_losses = losses.tolist()
        step_losses.extend(epoch_losses)
        metrics = EpochMetrics(
            epoch=epoch,
            train_s=train_s,
            # All ranks' images over this rank's time; the slowest rank's replaces it at the end.
            train_images_per_s=global_images / train_s,
            train_loss_mean=sum(epoch_losses) / len(epoch_losses),
            eval_s=eval_s,
            eval_images_per_s=len(data.test) / eval_s,
            test_loss=evaluation.loss,
            test_accuracy_pct=evaluation.accuracy_pct,
        )
        epochs.append(metrics)
        if reporter:
            reporter.epoch_finished(metrics)

    weights_sha256 = state_dict_digest(model)
    distributed = (
        _distributed_info(config, rank, device, epochs, global_images, weights_sha256)
        if rank
        else None
    )
    if rank and not rank.is_main:
        return None
    with torch.device("meta"):
        flops_per_sample = training_flops_per_sample(Net(), config.batch_size)
    summary = _summarise(
        config,
        epochs,
        flops_per_sample,
        device,
        peak,
        rank.world_size if rank else 1,
        rss_scope,
    )
    result = RunResult(
        run_id=_run_id(config, started),
        created_utc=started.isoformat(timespec="seconds"),
        config=config,
        environment=environment,
        arithmetic=arithmetic,
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
        weights_sha256=weights_sha256,
        distributed=distributed,
        notes=_notes(config, data, steps, arithmetic, distributed)
        + ([peak_problem] if peak_problem else []),
    )
    if weights_dir is not None:
        weights_path = weights_dir / f"{result.run_id}-weights.pt"
        with atomic_path(weights_path) as tmp:
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
        result.weights_file = weights_path.name
    return result


def _with_scaling_reference(result: RunResult, reference: Path | None, baselines_dir: Path) -> None:
    """Scaling efficiency against --reference, else a single-process baseline of the config."""
    assert result.distributed is not None
    if reference is not None:
        single = load_result(reference)
        name, rate = single.run_id, single.summary.steady_train_images_per_s
    else:
        baselines = load_baselines(baselines_dir)[0] if baselines_dir.exists() else []
        found = single_process_reference(result, baselines)
        if found is None:
            return
        name, rate = found
    info = result.distributed
    info.reference_run = name
    info.reference_train_images_per_s = rate
    info.scaling_efficiency_pct = 100 * info.global_train_images_per_s / (info.world_size * rate)


def plan(
    config: RunConfig,
    devices: Sequence[str],
    loaders: Sequence[str],
    rank: Rank | None = None,
    world_size: int | None = None,
) -> list[RunConfig]:
    """One validated config per device × loader; raises ConfigError for what cannot run.

    `rank` is this process's place in a running torchrun group; `world_size` is that of a
    group about to be launched (so that `--nproc-per-node` fails before it starts anything).
    """
    world_size = rank.world_size if rank else (world_size or 1)
    resolved = list(dict.fromkeys(str(resolve_device(name)) for name in devices))
    loaders = list(dict.fromkeys(loaders))
    if world_size > 1 and (len(resolved) > 1 or len(loaders) > 1):
        raise ConfigError("a distributed run takes one --device and one --loader")
    launching_on_gpus = rank is None and world_size > 1 and resolved[0].startswith("cuda")
    if launching_on_gpus and torch.cuda.device_count() < world_size:
        raise ConfigError(
            f"{world_size} processes need {world_size} GPUs; "
            f"this machine has {torch.cuda.device_count()}"
        )
    if rank and resolved[0].startswith("cuda"):
        resolved = [str(resolve_device(f"cuda:{rank.local_rank}"))]
    configs = [
        for_device(replace(config, loader=loader, world_size=world_size), device)
        for device in resolved
        for loader in loaders
    ]
    for run_config in configs:
        validate(run_config)
    return configs


def run_all(
    config: RunConfig,
    devices: Sequence[str],
    loaders: Sequence[str],
    out_dir: Path,
    data_dir: Path | None,
    download: bool,
    save_weights: bool = False,
    reporter: Reporter | None = None,
    reference: Path | None = None,
    dist_timeout_s: float = 120.0,
    baselines_dir: Path = Path("results/baselines"),
) -> list[RecordedRun]:
    """Check everything a user can get wrong, then benchmark each device × loader in turn.

    Each finished run is written (JSON, then its plot) before the next one starts. Under
    torchrun every rank trains its shard and rank 0 alone writes the one result.
    """
    rank = rank_from_environment()
    configs = plan(config, devices, loaders, rank)
    main = rank is None or rank.is_main
    if main:
        ensure_writable(out_dir)
        if reference is not None:
            load_result(reference)  # a bad reference fails now, not after training
    data = load_mnist(data_dir, download=download)
    if rank:
        init_process_group(torch.device(configs[0].device), dist_timeout_s)
    recorded = []
    try:
        for run_config in configs:
            if reporter and main:
                reporter.run_started(run_config)
            result = benchmark(
                run_config,
                data,
                reporter if main else None,
                out_dir if save_weights else None,
                rank,
            )
            if result is None:
                continue
            if result.distributed:
                _with_scaling_reference(result, reference, baselines_dir)
            result_path = save_result(result, out_dir)
            plot_path = plot_loss(result, out_dir / f"{result.run_id}-loss.png")
            recorded.append(RecordedRun(result, result_path, plot_path))
    finally:
        if rank:
            shutdown()
    return recorded
