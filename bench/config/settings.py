"""Every default, defined once: the run's options, where files go, and how compare judges.

Torch-free, so that the CLI can show these defaults in --help without loading torch.
`RunConfig` is also part of the result schema: a pydantic dataclass whose fields are checked
(types strict, numbers finite and in range) when it is built — from options or from a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass as plain_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

# Strict types (no "5" for 5), no NaN or ±Infinity anywhere.
STRICT_SCHEMA = ConfigDict(strict=True, allow_inf_nan=False, validate_assignment=True)
# At most 2**53, what a float holds exactly: counts enter ratios, and a larger one in a corrupt
# file would overflow a float there.
Count = Annotated[int, Field(ge=1, le=2**53)]
# Positive figures (seconds, images/s, FLOP/s, MB) between 1e-12 and 1e18: beyond either end a
# figure is a corrupt file, and ratios of such numbers would overflow to infinity.
Positive = Annotated[float, Field(ge=1e-12, le=1e18)]
Percent = Annotated[float, Field(ge=0, le=100)]
# Bounds that keep every option a run can actually do: torch seeds are 64-bit, and no one
# trains this network for more than a million epochs or steps.
MAX_SEED = 2**63 - 1
MAX_COUNT = 1_000_000

RESULTS_DIR = Path("results")
BASELINES_DIR = RESULTS_DIR / "baselines"
DEVICES = ("auto",)
LOADER = "tensor"
DIST_TIMEOUT_S = 120.0
# A collective's timeout: torch's timedelta overflows far beyond the upper bound (a year),
# and below a tenth of a second no rendezvous can form.
MIN_DIST_TIMEOUT_S, MAX_DIST_TIMEOUT_S = 0.1, 365 * 86400.0
SWEEP_BATCH_SIZES = (100, 250, 500, 1000, 2500, 5000)
SWEEP_STEPS = 30
MAX_REPLICATES = 1000  # `run --repeat`; `ab` pairs likewise
MAX_AB_MINUTES = 7 * 24 * 60.0
# `ab`: the change in training throughput that matters. Measured on the 2-core machine (README),
# 5 + 5 interleaved runs resolve about this much.
AB_MARGIN_PCT = 5.0
# `ab`'s level: a false "slower" (identical variants) at most this often, whenever it stops.
AB_ALPHA = 0.05
# `ab`'s caps at AB_MARGIN_PCT: ≈ 10 s replicates reach a verdict within 15 minutes (README:
# 12-20 runs on average).
AB_MAX_PAIRS = 40
AB_MAX_MINUTES = 15.0
AB_MIN_PAIRS = 4  # the first look: with fewer pairs the noise itself is not estimated
AB_NOISE_CV = 0.09  # run-to-run noise designed for: measured 4-8.4 % here (README)


@plain_dataclass(frozen=True)
class AbDesign:
    """`ab`'s sequential test as one design: the margin that matters, the level and what
    follows from them. The slowdowns its evidence is built for are mostly twice the margin and
    some six times it (so that a gross slowdown stops at the first looks: the t density's
    heavy tails cap a single design's evidence at 4 pairs below 1/α), at AB_NOISE_CV per run.
    The pairs a test needs grow with (noise / margin)², so the caps, set at AB_MARGIN_PCT,
    scale with (AB_MARGIN_PCT / margin)²; a cap given overrides its own."""

    margin_pct: float = AB_MARGIN_PCT
    alpha: float = AB_ALPHA
    max_pairs: int | None = None
    max_minutes: float | None = None

    @property
    def margin(self) -> float:
        return self.margin_pct / 100

    @property
    def _scale(self) -> float:
        """(AB_MARGIN_PCT / margin)², no less than what leaves room for the first look."""
        return max((AB_MARGIN_PCT / self.margin_pct) ** 2, AB_MIN_PAIRS / AB_MAX_PAIRS)

    @property
    def pairs(self) -> int:
        """The most pairs: the given cap, else AB_MAX_PAIRS scaled to the margin."""
        if self.max_pairs is not None:
            return self.max_pairs
        return min(MAX_REPLICATES, round(AB_MAX_PAIRS * self._scale))

    @property
    def minutes(self) -> float:
        """The most minutes: the given cap, else AB_MAX_MINUTES scaled to the margin."""
        if self.max_minutes is not None:
            return self.max_minutes
        return min(MAX_AB_MINUTES, AB_MAX_MINUTES * self._scale)

    @property
    def effects(self) -> list[tuple[float, float]]:
        """(weight, standardized effect) of the designed slowdowns: the mean ÷ the standard
        deviation of the pair log ratios (√2 · AB_NOISE_CV)."""
        return [
            (weight, math.log1p(-min(factor * self.margin, 0.99)) / (math.sqrt(2) * AB_NOISE_CV))
            for weight, factor in ((0.8, 2), (0.2, 6))
        ]


# Against a baseline that measured neither (bench.judge.stats): measured on the 2-core machine
# (README), sitting medians 7.8 % apart and 3.5-5 % run to run. The assumed figures count as
# this many degrees of freedom when pooled with measured ones.
ASSUMED_DRIFT = 0.08
ASSUMED_NOISE_CV = 0.05
ASSUMED_DOF = 4
# Every UTC time stamp in a file or folder name (run ids, groups, sweeps, `ab` folders).
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def utc_stamp(when: datetime | None = None) -> str:
    """`when` (default: now) as a name's time stamp, e.g. 20261130T065700Z."""
    return (when or datetime.now(UTC)).strftime(STAMP_FORMAT)


# `run --portable`: the reference arithmetic path, the same on any x86-64 CPU (README,
# "Machines"), set before torch loads in a fresh process that carries the marker.
PORTABLE_MARKER = "MNIST_BENCH_PORTABLE"
PORTABLE_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
PORTABLE_THREADS = 1
PORTABLE_DIGESTS_PATH = RESULTS_DIR / "portable-digests.json"  # `verify-portable`'s reference


def is_portable(environ: Mapping[str, str]) -> bool:
    """Whether a process with these environment variables started in portable mode."""
    pinned = all(environ.get(name) == value for name, value in PORTABLE_ENVIRONMENT.items())
    return pinned and environ.get(PORTABLE_MARKER) == "1"


def plural(count: int, word: str) -> str:
    """'1 epoch', '5 epochs': how every count is printed."""
    return f"{count} {word}{'' if count == 1 else 's'}"


# A `run --repeat` group id: what the results record, and what the hidden --group accepts.
GROUP_PATTERN = r"[A-Za-z0-9_.-]{1,64}"


Bounded = Annotated[int, Field(ge=1, le=MAX_COUNT)]


@dataclass(config=STRICT_SCHEMA)
class RunConfig:
    device: str  # as resolved: cpu, cuda:0, mps
    epochs: Bounded = 5
    batch_size: Bounded = 100  # not above the training split: checked against the data
    eval_batch_size: Bounded = 1000  # not above the test split: checked against the data
    lr: Annotated[float, Field(gt=0)] = 1e-3  # finite, like every float here
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    loader: str = LOADER
    deterministic: bool = True
    precision: str = "fp32"
    target_acc_pct: Annotated[float, Field(gt=0, le=100)] = 99.0
    threads: Bounded | None = None  # torch's CPU intra-op threads; None leaves torch's default
    max_steps_per_epoch: Bounded | None = None  # a cap for smoke runs; None trains full epochs
    # None = the device kind's default (bench.config.devices.KINDS); results store what ran.
    channels_last: bool | None = None
    optimizer: str | None = None
    compile: bool = False
    cuda_graphs: bool = False
    world_size: Bounded = 1  # data-parallel processes (torchrun); batch_size is then global...
    per_rank_batch: bool = False  # ...unless this is set: each rank takes batch_size (weak scaling)
    model: str = "seed-cnn"


@dataclass(config=STRICT_SCHEMA)
class Tolerances:
    # Margins: speed, percent of the baseline's geometric mean; accuracy, points (per seed and
    # over seeds). A regression needs evidence of a change and an estimate beyond the margin.
    throughput_pct: Annotated[float, Field(ge=0, lt=50)] = 10.0
    accuracy_points: Annotated[float, Field(ge=0, le=100)] = 0.3
    # The drift between sittings to assume where a baseline measured it in fewer than three;
    # None: the baseline's own figure (bench.judge.stats.ASSUMED_DRIFT when it has none).
    assumed_drift_pct: Annotated[float, Field(ge=0, lt=100)] | None = None
