"""What each command's options may be, checked as fields when they are built.

A command parses its options into one of these requests and hands it to one job (bench.jobs),
which chooses how to do it; a value no field accepts, or options that contradict each other,
end as ConfigError naming the option, before any work starts.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import shlex
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from bench.config.settings import (
    AB_ALPHA,
    AB_MARGIN_PCT,
    DIST_TIMEOUT_S,
    GROUP_PATTERN,
    MAX_AB_MINUTES,
    MAX_COUNT,
    MAX_DIST_TIMEOUT_S,
    MAX_REPLICATES,
    MAX_SEED,
    MIN_DIST_TIMEOUT_S,
    PORTABLE_THREADS,
    STRICT_SCHEMA,
    SWEEP_STEPS,
    AbDesign,
    Bounded,
    RunConfig,
    Tolerances,
)
from bench.errors import ConfigError

# Where a field's value came from, when the option's name is not the field's.
OPTION_OF_FIELD = {
    "target_acc_pct": "--target-acc",
    "max_steps_per_epoch": "--max-steps",
    "throughput_pct": "--throughput-tolerance",
    "accuracy_points": "--accuracy-tolerance",
    "assumed_drift_pct": "--assumed-drift",
    "devices": "--device",
    "loaders": "--loader",
    "out_dir": "--out",
    "dist_timeout_s": "--dist-timeout",
    "a_options": "--a",
    "b_options": "--b",
    "common_options": "--common",
    "max_time_min": "--max-time",
    "margin_pct": "--margin",
}

Request = TypeVar("Request")


def from_options(kind: type[Request], **values: Any) -> Request:
    """`kind` built from a command's options; what it refuses raises ConfigError naming the
    option and its value (a check across options names them in its own words)."""
    try:
        return kind(**values)
    except ValidationError as error:
        details = error.errors()[0]
        reason = details["msg"].removeprefix("Value error, ")
        fields = [part for part in details["loc"] if isinstance(part, str)]
        if not fields:
            raise ConfigError(reason) from None
        option = OPTION_OF_FIELD.get(fields[-1], "--" + fields[-1].replace("_", "-"))
        raise ConfigError(f"{option} {details['input']!r}: {reason}") from None


def _group_id(text: str) -> str:
    if not re.fullmatch(GROUP_PATTERN, text):
        raise ValueError("must be 1 to 64 letters, digits, '_', '.' or '-'")
    return text


def _split_arguments(text: Any) -> Any:
    """A shell-quoted option string as arguments: how `ab` takes a variant's `run` options."""
    if not isinstance(text, str):
        return text
    try:
        return shlex.split(text)
    except ValueError as error:
        raise ValueError(f"cannot be split into arguments ({error})") from None


def _split_numbers(text: Any) -> Any:
    """'100,250, 500' as whole numbers, for the fields to bound."""
    if not isinstance(text, str):
        return text
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError("must be comma-separated whole numbers") from None


def _drawn_seed(value: Any = None) -> Any:
    """A seed drawn at random where none was given."""
    return secrets.randbelow(MAX_ORDER_SEED + 1) if value is None else value


GroupId = Annotated[str, AfterValidator(_group_id)]
Arguments = Annotated[list[str], BeforeValidator(_split_arguments)]
Command = Annotated[list[str], BeforeValidator(_split_arguments), Field(min_length=1)]
Counts = Annotated[list[Bounded], BeforeValidator(_split_numbers), Field(min_length=1)]
Seeds = Annotated[
    list[Annotated[int, Field(ge=0, le=MAX_SEED)]],
    BeforeValidator(_split_numbers),
    Field(min_length=1),
]


def _revision(name: str) -> str:
    """A git revision as the user names it: a branch, tag, sha or HEAD~3, never an option."""
    if not name or len(name) > 256 or name.startswith("-") or any(c.isspace() for c in name):
        raise ValueError("not a git revision (a branch, tag or commit, e.g. origin/main)")
    return name


Revision = Annotated[str, AfterValidator(_revision)]
MAX_PROCESSES = 1024  # `run --nproc-per-node`
MAX_ORDER_SEED = 2**32 - 1  # `ab --order-seed`
AbMarginPct = Annotated[float, Field(gt=0, lt=50)]  # `ab --margin`, `report --margin`
OrderSeed = Annotated[int, BeforeValidator(_drawn_seed), Field(ge=0, le=MAX_ORDER_SEED)]


@dataclass(config=STRICT_SCHEMA)
class RunRequest:
    """`run`: the config, the devices and loaders to run it on, and how: in this process, as
    replicates in fresh processes (`repeat`), under torchrun (`nproc_per_node`), or rerun in
    portable mode."""

    config: RunConfig
    devices: Annotated[list[str], Field(min_length=1)]
    loaders: Annotated[list[str], Field(min_length=1)]
    out_dir: Path
    data_dir: Path | None = None
    download: bool = True
    save_weights: bool = False
    plot: bool = False
    reference: Path | None = None
    dist_timeout_s: Annotated[float, Field(ge=MIN_DIST_TIMEOUT_S, le=MAX_DIST_TIMEOUT_S)] = (
        DIST_TIMEOUT_S
    )
    repeat: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] = 1
    same_seed: bool = False
    in_process: bool = False
    nproc_per_node: Annotated[int, Field(ge=1, le=MAX_PROCESSES)] | None = None
    portable: bool = False
    group: GroupId | None = None
    replicate: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] | None = None

    @model_validator(mode="after")
    def _one_way_to_run(self) -> RunRequest:
        if self.repeat > 1 and self.nproc_per_node is not None:
            raise ValueError("--repeat runs one process at a time: leave out --nproc-per-node")
        if not self.same_seed and self.config.seed + self.repeat - 1 > MAX_SEED:
            raise ValueError(
                f"--seed {self.config.seed} with --repeat {self.repeat} runs past the largest seed"
            )
        if self.portable:
            if self.devices != ["cpu"]:
                raise ValueError(
                    f"--portable pins the CPU's arithmetic: give -d cpu, not {self.devices}"
                )
            if self.config.threads not in (None, PORTABLE_THREADS):
                raise ValueError(
                    f"--portable runs {PORTABLE_THREADS} thread, "
                    f"not --threads {self.config.threads}"
                )
            if self.nproc_per_node is not None:
                raise ValueError("--portable runs one process: leave out --nproc-per-node")
        return self

    @property
    def seeds(self) -> list[int]:
        """The seed of each replicate: consecutive from the config's, unless `same_seed`."""
        first = self.config.seed
        return [first] * self.repeat if self.same_seed else list(range(first, first + self.repeat))


@dataclass(config=STRICT_SCHEMA)
class SweepRequest:
    """`sweep`: every device × CPU thread count (None: torch's default) × batch size."""

    config: RunConfig
    devices: Annotated[list[str], Field(min_length=1)]
    batch_sizes: Counts
    out_dir: Path
    threads: Counts | None = None  # None: torch's default
    steps: Annotated[int, Field(ge=1, le=MAX_COUNT)] = SWEEP_STEPS
    data_dir: Path | None = None
    download: bool = True


class Designed:
    """A request that runs `ab`'s sequential test: its design from its margin, level and caps."""

    margin_pct: float
    alpha: float
    max_pairs: int | None
    max_time_min: float | None

    @property
    def design(self) -> AbDesign:
        return AbDesign(self.margin_pct, self.alpha, self.max_pairs, self.max_time_min)


@dataclass(config=STRICT_SCHEMA)
class AbRequest(Designed):
    """`ab`: two variants (an interpreter command and `run` options each), the options both
    share, and when the sequential test must stop."""

    out_dir: Path
    a_options: Arguments
    b_options: Arguments
    common_options: Arguments
    a_python: Command | None = None  # None: this interpreter
    b_python: Command | None = None
    # Git revisions of this checkout, each run from a worktree and environment of its own
    # (bench.measure.revisions); None: the interpreter above, i.e. the working tree's code.
    a_rev: Revision | None = None
    b_rev: Revision | None = None
    # The caps; None: the design's for the margin (AbDesign).
    max_pairs: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] | None = None
    max_time_min: Annotated[float, Field(gt=0, le=MAX_AB_MINUTES)] | None = None
    margin_pct: AbMarginPct = AB_MARGIN_PCT
    # The rule's level: `bisect` gives each of its steps a share of its own.
    alpha: Annotated[float, Field(gt=0, le=AB_ALPHA)] = AB_ALPHA
    # The seed of the coin that orders each pair (None: drawn; `ab` records it in the folder).
    order_seed: OrderSeed = dataclasses.field(default_factory=_drawn_seed)

    @model_validator(mode="after")
    def _one_source_per_variant(self) -> AbRequest:
        for name, python, revision in (
            ("a", self.a_python, self.a_rev),
            ("b", self.b_python, self.b_rev),
        ):
            if python is not None and revision is not None:
                raise ValueError(
                    f"--{name}-python and --{name}-rev: give one (a revision brings its own "
                    "interpreter)"
                )
        return self


@dataclass(config=STRICT_SCHEMA)
class BisectRequest(Designed):
    """`bisect`: the first-parent history from `good` to `bad`, an `ab` per step of B = the
    step's commit against A = good, each step's cap as `ab`'s, the overall level split over
    the steps the search can take."""

    good: Revision
    bad: Revision
    out_dir: Path
    common_options: Arguments
    # The caps; None: the design's for the margin (AbDesign).
    max_pairs: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] | None = None
    max_time_min: Annotated[float, Field(gt=0, le=MAX_AB_MINUTES)] | None = None
    margin_pct: AbMarginPct = AB_MARGIN_PCT
    alpha: Annotated[float, Field(gt=0, le=AB_ALPHA)] = AB_ALPHA
    order_seed: OrderSeed = dataclasses.field(default_factory=_drawn_seed)


@dataclass(config=STRICT_SCHEMA)
class ComparisonRequest:
    """How verdicts are judged: one request for `compare` and `report` (and, for its margin,
    `ab`), so that the same runs get the same verdicts in each. The margins and tolerances
    with the drift to assume between sittings (`tolerances`), the baselines (a folder or file;
    None: the default folder), and the margin of `ab`'s rule for `ab` folders (None: each
    folder's own, recorded when it ran). The estimator is each baseline's own: its runs hold
    no other figure, and new runs are re-taken by it."""

    tolerances: Tolerances = dataclasses.field(default_factory=Tolerances)
    baseline: Path | None = None
    ab_margin_pct: AbMarginPct | None = None


@dataclass(config=STRICT_SCHEMA)
class PortableRequest:
    """`verify-portable`: the seeds to run in portable mode and the reference they answer to."""

    seeds: Seeds
    reference: Path
    out_dir: Path
    data_dir: Path | None = None
    epochs: Bounded | None = None
    max_steps: Bounded | None = None
    record: bool = False

    @model_validator(mode="after")
    def _reference_to_answer_to(self) -> PortableRequest:
        try:
            missing = not self.reference.exists()
        except OSError as error:
            raise ValueError(f"--reference {self.reference}: {error.strerror}") from None
        if missing and not self.record:
            raise ValueError(f"no reference digests at {self.reference}")
        return self
