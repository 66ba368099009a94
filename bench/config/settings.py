"""Every default, defined once: the run's options, where files go, and how compare judges.

Torch-free, so that the CLI can show these defaults in --help without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path("results")
BASELINES_DIR = RESULTS_DIR / "baselines"
DEVICES = ("auto",)
LOADER = "tensor"
DIST_TIMEOUT_S = 120.0
SWEEP_BATCH_SIZES = (100, 250, 500, 1000, 2500, 5000)
SWEEP_STEPS = 30


@dataclass
class RunConfig:
    device: str  # as resolved: cpu, cuda:0, mps
    epochs: int = 5
    batch_size: int = 100
    eval_batch_size: int = 1000
    lr: float = 1e-3
    seed: int = 0
    loader: str = LOADER
    deterministic: bool = True
    precision: str = "fp32"
    target_acc_pct: float = 99.0
    threads: int | None = None  # torch's CPU intra-op threads; None leaves torch's default
    max_steps_per_epoch: int | None = None  # a cap for smoke runs; None trains full epochs
    # None = the device's default (bench.config.resolve.DEVICE_DEFAULTS); results store what ran.
    channels_last: bool | None = None
    optimizer: str | None = None
    compile: bool = False
    cuda_graphs: bool = False
    world_size: int = 1  # data-parallel processes (torchrun); batch_size is then global...
    per_rank_batch: bool = False  # ...unless this is set: each rank takes batch_size (weak scaling)
    model: str = "seed-cnn"


@dataclass
class Tolerances:
    throughput_pct: float = 10.0  # below the slowest baseline seed: "slower"
    accuracy_points: float = 0.3  # below the same seed: "less accurate"
