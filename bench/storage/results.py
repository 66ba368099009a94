"""The one result schema: what `run` produces, what is stored, validated, compared and drawn.

Pydantic dataclasses: every field typed strictly (no "5" for 5, no true for 1), every float
finite, every figure within its meaning (accuracy 0–100, times and throughputs positive).
Validation runs when a result is built and when a file is read, so a NaN can neither be written
nor read back. `results/result.schema.json` is generated from these classes.
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from bench.config.settings import (
    GROUP_PATTERN,
    STRICT_SCHEMA,
    Count,
    Percent,
    Positive,
    RunConfig,
    utc_stamp,
)
from bench.errors import ResultFileError, first_error
from bench.storage.throughput import ESTIMATORS, FORMER_NAMES

SCHEMA_VERSION = 4
T = TypeVar("T")
NonNegative = Annotated[float, Field(ge=0, le=1e18)]
ConfusionRow = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=10, max_length=10)]


def _known_estimator(name: str) -> str:
    """The estimator's stable id; a file of before the ids gives its label, read as the id."""
    name = FORMER_NAMES.get(name, name)
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")
    return name


# The id of one of bench.storage.throughput's estimators (e.g. "block-p75").
EstimatorName = Annotated[str, AfterValidator(_known_estimator)]


# Years a time may have: wide enough for any clock, narrow enough that date arithmetic between
# two such times (a sitting's span added to its last run) never leaves what datetime holds.
YEARS = range(1970, 3000)


def _aware_timestamp(text: str) -> str:
    """The time as one instant, written in UTC in one form (seconds, and microseconds when it
    has them): parsed once, here, so that every comparison, sort and subtraction after it is
    of instants — a time written with another UTC offset sorts where it happened."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no time zone (e.g. +00:00)")
    outside = ValueError(f"{text!r} is outside the years {YEARS.start}–{YEARS.stop - 1}")
    if moment.year not in YEARS:  # checked before converting: 0001-01-01T00:00+01:00 has no UTC
        raise outside
    in_utc = moment.astimezone(UTC)
    if in_utc.year not in YEARS:
        raise outside
    return in_utc.isoformat()


# An ISO 8601 time with its zone, e.g. 2026-11-30T07:00:00+00:00, held as the UTC instant in
# one form ('…:00+00:00', or '…:00.250000+00:00'), so that text order is time order: times are
# sorted into sittings and subtracted, which a zone-less time cannot be against a zoned one.
AwareTimestamp = Annotated[str, AfterValidator(_aware_timestamp)]


def refuse_contradictions(checks: list[tuple[bool, str]]) -> None:
    """Raise ValueError with the first message whose condition does not hold: a document's
    fields must agree with each other, not only each with its own range."""
    for holds, message in checks:
        if not holds:
            raise ValueError(message)


def new_run_id(config: RunConfig, started: datetime) -> str:
    """`<UTC time>-<device>-<loader>-s<seed>-<8 hex>`: unique even for runs that start in the
    same second (and written exclusively, so a clash could never overwrite)."""
    device = config.device.replace(":", "")
    return f"{utc_stamp(started)}-{device}-{config.loader}-s{config.seed}-{secrets.token_hex(4)}"


@dataclass(config=STRICT_SCHEMA)
class CpuFingerprint:
    """The processor, as /proc/cpuinfo and sysfs describe it (None where they do not say)."""

    vendor: str | None  # vendor_id, e.g. AuthenticAMD, GenuineIntel
    family: int | None
    model: int | None
    stepping: int | None
    microcode: str | None  # hidden inside many virtual machines
    flags: list[str]  # the flags that choose kernels: fma, avx2, avx512*, amx*
    caches: dict[str, str]  # e.g. {"L1d": "32K", "L2": "1024K", "L3": "32768K"}
    memory_mb: NonNegative | None  # MemTotal

    @property
    def label(self) -> str | None:
        """e.g. 'AuthenticAMD family 23 model 49 stepping 0'; None where a part is unknown."""
        parts = (self.vendor, self.family, self.model, self.stepping)
        if None in parts:
            return None
        return "{} family {} model {} stepping {}".format(*parts)


@dataclass(config=STRICT_SCHEMA)
class MathPath:
    """Which arithmetic the CPU libraries chose in this process: what decides the bits."""

    torch_git: str | None  # the commit torch was built from (torch.version.git_version)
    capability: str | None  # ATen's kernels: DEFAULT, AVX2, AVX512 (torch.backends.cpu)
    onednn_isa: str | None  # oneDNN's instruction set, as its verbose mode names it
    mkl: str | None  # versions, from torch.__config__.show()
    onednn: str | None
    knobs: dict[str, str]  # the environment variables that change results, as set
    portable: bool = False  # `run --portable`: the reference path pinned (bench.measure.portable)


@dataclass(config=STRICT_SCHEMA)
class AcceleratorFingerprint:
    """The accelerator beyond its name, in words of no one vendor: torch's device properties
    and, where the vendor's tool answers (nvidia-smi), its driver and limits. CUDA: the
    capability is the compute capability, the units its streaming multiprocessors."""

    uuid: str | None
    capability: str | None  # e.g. "9.0"
    units: Count | None  # compute units
    memory_mb: NonNegative | None
    driver: str | None = None
    max_clock_mhz: NonNegative | None = None
    power_limit_w: NonNegative | None = None


# Other processes may use this much of a core beside a run's threads before it counts as
# disturbed: shells, the sampler itself, a terminal redrawing.
SLACK_CORES = 0.25
MAX_STEAL_PCT = 5.0


def disturbance_verdict(
    cores: int, threads: int, others: float, steal: float | None
) -> tuple[bool, list[str]]:
    """Whether a run of `threads` threads was disturbed on `cores` cores while other processes
    used `others` cores and the hypervisor `steal` percent; the reasons. The one rule: the
    sampler applies it, and a file's `disturbed` must be what it gives for the file's figures."""
    reasons = []
    if threads + others > cores + SLACK_CORES:
        reasons.append(
            f"other processes used {others:.1f} of {cores} cores beside the run's {threads} "
            "threads: more runnable work than cores"
        )
    if steal is not None and steal > MAX_STEAL_PCT:
        reasons.append(f"the hypervisor took {steal:.0f} % of the CPU time (steal)")
    return bool(reasons), reasons


@dataclass(config=STRICT_SCHEMA)
class Disturbance:
    """What else the machine did while the run trained (bench.measure.disturbance)."""

    cores: Count
    threads: Count  # what this run asked of them
    wall_s: Positive
    samples: Annotated[int, Field(ge=0)]
    other_cpu_cores: NonNegative  # other processes' CPU time ÷ wall time, in cores
    steal_pct: NonNegative | None  # of all CPU time: the hypervisor ran someone else
    max_runnable: Annotated[int, Field(ge=0)] | None  # /proc/stat procs_running, this run's too
    load_1m_before: NonNegative | None
    load_1m_after: NonNegative | None
    mhz_min: NonNegative | None  # /proc/cpuinfo "cpu MHz" over the samples
    mhz_max: NonNegative | None
    governor: str | None
    disturbed: bool
    reasons: list[str] = field(default_factory=list)

    @model_validator(mode="after")
    def _disturbed_as_its_samples_say(self) -> Disturbance:
        expected, _ = disturbance_verdict(
            self.cores, self.threads, self.other_cpu_cores, self.steal_pct
        )
        if self.disturbed != expected:
            steal = "" if self.steal_pct is None else f", steal {self.steal_pct:g} %"
            raise ValueError(
                f"disturbed {self.disturbed} contradicts its own samples (other_cpu_cores "
                f"{self.other_cpu_cores:.2f} beside {self.threads} threads on {self.cores} "
                f"cores{steal})"
            )
        return self


@dataclass(config=STRICT_SCHEMA)
class Environment:
    torch: str
    torchvision: str
    cuda: str | None
    cudnn: int | None
    device_type: str
    device_name: str
    cpu_name: str
    cpu_count: Count
    threads: Count
    os: str
    python: str
    git_commit: str | None
    # None: unknown (a file older than schema 3).
    cpu: CpuFingerprint | None = None
    math: MathPath | None = None
    accelerator: AcceleratorFingerprint | None = None  # an accelerator's run only

    @model_validator(mode="after")
    def _kernels_the_cpu_has(self) -> Environment:
        """The instruction sets the libraries chose must be ones the CPU's flags offer: a
        library may choose less than the CPU has (portable mode does), never more."""
        if self.cpu is None or self.math is None:
            return self
        flags = " ".join(self.cpu.flags)
        for field_name, chosen in (
            ("capability", self.math.capability),
            ("onednn_isa", self.math.onednn_isa),
        ):
            text = (chosen or "").upper().replace("-", "")
            for needs in ("AVX512", "AMX", "AVX2"):
                if needs in text and needs.lower() not in flags:
                    raise ValueError(
                        f"math.{field_name} {chosen!r} needs {needs}, which cpu.flags do not "
                        f"list ({flags or 'none'})"
                    )
        return self


@dataclass(config=STRICT_SCHEMA)
class Arithmetic:
    """What arithmetic the run did, as torch reported it after setting it up."""

    precision: str  # the --precision asked for
    autocast_dtype: str | None  # bfloat16 / float16 under autocast, else None
    cuda_matmul_fp32: str  # torch's fp32_precision per backend: "ieee" or "tf32"
    cudnn_conv_fp32: str
    mkldnn_matmul_fp32: str
    mkldnn_conv_fp32: str
    determinism: Literal[
        "strict", "warn-only", "off", "unknown"
    ]  # strict, warn-only (the device lacks a deterministic kernel), off; unknown: schema 1
    bitwise_reruns: bool  # strict determinism: the same seed must give the same weights

    @model_validator(mode="after")
    def _bitwise_only_when_strict(self) -> Arithmetic:
        if self.bitwise_reruns != (self.determinism == "strict"):
            raise ValueError(
                f"bitwise_reruns {self.bitwise_reruns} contradicts determinism "
                f"{self.determinism!r} (bitwise reruns are what strict determinism promises)"
            )
        return self


@dataclass(config=STRICT_SCHEMA)
class ModelInfo:
    parameters: Count
    train_flops_per_sample: Count


@dataclass(config=STRICT_SCHEMA)
class DataInfo:
    source: str
    sha256: str
    canonical: bool
    train_samples: Count
    test_samples: Count


@dataclass(config=STRICT_SCHEMA)
class EpochMetrics:
    epoch: Count
    train_s: Positive
    train_images_per_s: Positive
    train_loss_mean: NonNegative
    eval_s: Positive
    eval_images_per_s: Positive
    test_loss: NonNegative
    test_accuracy_pct: Percent
    # Training throughput of each full block of Summary.block_steps steps, timed without a host
    # sync per step (CUDA events on CUDA); empty where blocks are not timed (MPS, or the
    # slowest-rank epochs of a data-parallel run).
    block_images_per_s: list[Positive] = field(default_factory=list)


@dataclass(config=STRICT_SCHEMA)
class Summary:
    warmup_train_s: Positive  # epoch 1, which pays for allocation and kernel selection
    steady_train_images_per_s: Positive  # the headline: `estimator` over the steady blocks
    eval_images_per_s: Positive  # median over epochs
    total_train_s: Positive
    final_test_accuracy_pct: Percent
    final_test_loss: NonNegative
    time_to_target_s: Positive | None  # cumulative training time until accuracy >= target
    epochs_to_target: Count | None
    peak_host_rss_mb: Positive  # peak resident set size while training (see scope)
    peak_host_rss_scope: Literal[
        "training", "process"
    ]  # "training" (Linux: reset before epoch 1) or "process" (lifetime)
    peak_device_mem_mb: NonNegative | None  # CUDA max allocated; None off CUDA
    train_flops_per_s: Positive  # training FLOPs per sample × steady images/s
    # In the run's precision, measured in a separate process, cached per machine (measure.peak).
    peak_matmul_flops_per_s: Positive | None = None
    peak_measured_utc: AwareTimestamp | None = None
    mfu_pct: NonNegative | None = None  # train_flops_per_s as a share of that peak
    # How the headline was taken (bench.storage.throughput.HEADLINE) and the block size it saw.
    estimator: EstimatorName = "epoch-median"
    block_steps: Count | None = None


@dataclass(config=STRICT_SCHEMA)
class RankFigures:
    rank: Annotated[int, Field(ge=0)]
    host: str
    device: str
    train_images_per_s: Positive  # this rank's images / its own training time, steady median
    weights_sha256: str


@dataclass(config=STRICT_SCHEMA)
class DistributedInfo:
    world_size: Count
    nodes: Count
    backend: str
    scaling: Literal["strong", "weak"]  # global batch fixed, or per-rank batch fixed
    global_batch_size: Count
    per_rank_batch_size: Count
    global_train_images_per_s: Positive  # all images / the slowest rank's time, steady median
    ranks: Annotated[list[RankFigures], Field(min_length=1)]
    weights_identical: bool
    reference_run: str | None = None  # a single-process run or baseline of the same config
    reference_train_images_per_s: Positive | None = None
    scaling_efficiency_pct: NonNegative | None = None  # global ÷ (world size × reference)

    @model_validator(mode="after")
    def _one_figure_per_rank(self) -> DistributedInfo:
        if len(self.ranks) != self.world_size:
            raise ValueError(f"{len(self.ranks)} ranks' figures for world size {self.world_size}")
        return self


@dataclass(config=STRICT_SCHEMA)
class RunResult:
    run_id: str
    created_utc: AwareTimestamp
    config: RunConfig
    environment: Environment
    arithmetic: Arithmetic
    model: ModelInfo
    data: DataInfo
    epochs: Annotated[list[EpochMetrics], Field(min_length=1)]
    summary: Summary
    step_losses: Annotated[list[float], Field(min_length=1)]  # finite, like every float here
    per_class_accuracy_pct: Annotated[list[Percent | None], Field(min_length=10, max_length=10)]
    confusion: Annotated[list[ConfusionRow], Field(min_length=10, max_length=10)]
    weights_sha256: str
    # A file name beside the result, never a path elsewhere.
    weights_file: Annotated[str, Field(pattern=r"^[^/\\]+$")] | None = None
    distributed: DistributedInfo | None = None
    # `run --repeat`: the group its replicates share, and which replicate this is (from 1).
    group: Annotated[str, Field(pattern=rf"^{GROUP_PATTERN}$")] | None = None
    replicate: Count | None = None
    disturbance: Disturbance | None = None  # None: not sampled (a file older than schema 3)
    schema_version: int = SCHEMA_VERSION
    notes: list[str] = field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> RunResult:
        config, arithmetic, summary = self.config, self.arithmetic, self.summary
        epochs = len(self.epochs)
        world_size = self.distributed.world_size if self.distributed else 1
        refuse_contradictions(
            [
                (epochs == config.epochs, f"{epochs} epochs' figures for {config.epochs} epochs"),
                (
                    [m.epoch for m in self.epochs] == list(range(1, epochs + 1)),
                    "epochs are not numbered 1, 2, … in order",
                ),
                (
                    arithmetic.precision == config.precision,
                    f"arithmetic.precision {arithmetic.precision!r} but config.precision "
                    f"{config.precision!r}",
                ),
                (
                    (arithmetic.determinism == "off") == (not config.deterministic),
                    f"arithmetic.determinism {arithmetic.determinism!r} but config.deterministic "
                    f"{config.deterministic}",
                ),
                (
                    self.environment.device_type == config.device.split(":")[0],
                    f"environment.device_type {self.environment.device_type!r} but config.device "
                    f"{config.device!r}",
                ),
                (
                    world_size == config.world_size
                    and (self.distributed is None) == (config.world_size == 1),
                    f"config.world_size {config.world_size} but figures of {world_size} rank(s)",
                ),
                (
                    sum(map(sum, self.confusion)) == self.data.test_samples,
                    f"the confusion matrix counts {sum(map(sum, self.confusion))} test images, "
                    f"data.test_samples {self.data.test_samples}",
                ),
                (
                    (summary.time_to_target_s is None) == (summary.epochs_to_target is None)
                    and (summary.epochs_to_target or 0) <= epochs,
                    "summary.time_to_target_s and epochs_to_target disagree",
                ),
                (
                    self.disturbance is None
                    or self.disturbance.cores == self.environment.cpu_count,
                    f"disturbance.cores {self.disturbance and self.disturbance.cores} but "
                    f"environment.cpu_count {self.environment.cpu_count} (both count this "
                    "machine's cores)",
                ),
            ]
        )
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, raw: str | bytes | None = None) -> RunResult:
        """A result from its parsed JSON, upgraded from an older schema; `raw`, the file's own
        text, is what gets validated (otherwise, or once upgraded, the data dumped back to
        JSON)."""
        current = upgrade(data, "schema_version", SCHEMA_VERSION, RESULT_UPGRADES, "schema version")
        return validate_document(RESULT_SCHEMA, current, raw if current is data else None)


# Steps that bring a document up one schema version: STEPS[n] turns version n into n + 1.
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
UNKNOWN = "unknown"  # what a field holds when an older file cannot know it


# Nothing the harness writes nests deeper than about 10 (a JSON Schema); a deeper document is
# refused before Python walks it recursively (an upgrade's copy, json.dumps).
MAX_NESTING = 64


def check_nesting(document: Any, limit: int = MAX_NESTING) -> None:
    """ResultFileError if `document` nests objects and arrays deeper than `limit`; walked
    level by level, without recursion, so that any depth is measured, never a RecursionError."""
    containers = (dict, list)
    level = [document] if isinstance(document, containers) else []
    for depth in itertools.count(1):
        if not level:
            return
        if depth > limit:
            raise ResultFileError(f"nested deeper than {limit} levels")
        level = [
            child
            for value in level
            for child in (value.values() if type(value) is dict else value)
            if isinstance(child, containers)
        ]


def upgrade(
    data: Any, marker: str, version: int, steps: dict[int, Upgrade], what: str
) -> dict[str, Any]:
    """`data` brought up to `version` one step at a time (as asv and pyperf do), the version
    marker bumped after each; a document of no version this tool knows is refused, and so is
    one to upgrade that nests past MAX_NESTING, before the upgrade and after each step (a
    current one goes straight to pydantic's JSON parser, which bounds nesting itself)."""
    if not isinstance(data, dict):
        raise ResultFileError("not a JSON object")
    found = data.get(marker)
    if found == version:
        return data
    check_nesting(data)
    if type(found) is not int or found not in steps:
        oldest = min(steps, default=version)
        raise ResultFileError(f"{what} {found!r}, this tool reads {oldest} to {version}")
    upgraded = copy.deepcopy(data)
    while found != version:
        upgraded = steps[found](upgraded)
        check_nesting(upgraded)
        found += 1
        upgraded[marker] = found
    return upgraded


def member_objects(document: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    """The named members that are objects (a malformed one is left to validation)."""
    return [document[name] for name in names if isinstance(document.get(name), dict)]


def _result_1_to_2(document: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 recorded the arithmetic, and that the peak RSS covers training only; a
    schema 1 file measured the process's lifetime and knows no more of its arithmetic than the
    precision asked for."""
    config = document.get("config")
    precision = config.get("precision") if isinstance(config, dict) else None
    document.setdefault(
        "arithmetic",
        {
            "precision": precision,
            "autocast_dtype": {"bf16": "bfloat16", "fp16": "float16"}.get(str(precision)),
            "cuda_matmul_fp32": UNKNOWN,
            "cudnn_conv_fp32": UNKNOWN,
            "mkldnn_matmul_fp32": UNKNOWN,
            "mkldnn_conv_fp32": UNKNOWN,
            "determinism": UNKNOWN,
            "bitwise_reruns": False,  # no digest verdict for an unknown determinism
        },
    )
    for summary in member_objects(document, "summary"):
        summary.setdefault("peak_host_rss_scope", "process")
    return document


def _result_2_to_3(document: dict[str, Any]) -> dict[str, Any]:
    """Schema 3 fingerprints the machine and samples its disturbance: unknown before."""
    for environment in member_objects(document, "environment"):
        environment.update(cpu=None, math=None, gpu=None)
    document["disturbance"] = None
    return document


# Schema 3's `gpu` fields, each with its name in schema 4's `accelerator`.
GPU_FIELDS_3 = {
    "uuid": "uuid",
    "compute_capability": "capability",
    "memory_mb": "memory_mb",
    "max_sm_clock_mhz": "max_clock_mhz",
    "power_limit_w": "power_limit_w",
}


def _result_3_to_4(document: dict[str, Any]) -> dict[str, Any]:
    """Schema 4 names the accelerator's fingerprint in words of no one vendor: schema 3's
    `gpu` object, `gpu_driver` and `gpu_sm_count` become one `accelerator` object."""
    for environment in member_objects(document, "environment"):
        gpu = environment.pop("gpu", None)
        driver, units = environment.pop("gpu_driver", None), environment.pop("gpu_sm_count", None)
        if "accelerator" in environment:
            raise ResultFileError("environment: schema 3 has `gpu`, not `accelerator`")
        if gpu is not None and not isinstance(gpu, dict):
            raise ResultFileError("environment.gpu: should be an object or null")
        gpu = gpu or {}
        if unknown := sorted(set(gpu) - set(GPU_FIELDS_3)):
            raise ResultFileError(f"environment.gpu: unknown field {unknown[0]!r}")
        accelerator = {new: gpu.get(old) for old, new in GPU_FIELDS_3.items()}
        accelerator |= {"units": units, "driver": driver}
        known = any(value is not None for value in accelerator.values())
        environment["accelerator"] = accelerator if known else None
    return document


RESULT_UPGRADES: dict[int, Upgrade] = {1: _result_1_to_2, 2: _result_2_to_3, 3: _result_3_to_4}


def validate_document(adapter: TypeAdapter[T], data: Any, raw: str | bytes | None) -> T:
    """Validate a document as JSON text, in pydantic's strict JSON mode (objects for the nested
    classes; NaN and Infinity refused); an error becomes one ResultFileError line."""
    if raw is None:
        check_nesting(data)  # json.dumps recurses
    try:
        return adapter.validate_json(json.dumps(data) if raw is None else raw)
    except ValidationError as error:
        raise ResultFileError(first_error(error)) from None


RESULT_SCHEMA = TypeAdapter(RunResult)
