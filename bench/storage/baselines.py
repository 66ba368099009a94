"""Recorded baselines: each seed's figures for one experiment × implementation × machine.

Pydantic dataclasses, like results: strict types, finite figures within their meaning;
`results/baseline.schema.json` is generated from them."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, model_validator
from pydantic.dataclasses import dataclass

from bench.config.devices import bitwise_reruns
from bench.config.settings import (
    ASSUMED_DRIFT,
    MAX_COUNT,
    STRICT_SCHEMA,
    Percent,
    Positive,
    RunConfig,
)
from bench.errors import BaselineError, ResultFileError, WriteError
from bench.storage.experiment import (
    Hardware,
    Identity,
    bitwise_path,
    default_name,
    differing,
    hardware_of,
    identity,
    identity_of,
)
from bench.storage.files import (
    BASELINE,
    BASELINE_MARKER,
    document_kind,
    json_files,
    read_document,
    write_json_atomic,
)
from bench.storage.results import (
    UNKNOWN,
    AwareTimestamp,
    EstimatorName,
    RunResult,
    Upgrade,
    member_objects,
    refuse_contradictions,
    upgrade,
    validate_document,
)
from bench.storage.throughput import LABELS

BASELINE_SCHEMA_VERSION = 4


@dataclass(config=STRICT_SCHEMA)
class SeedFigures:
    run_id: str
    seed: Annotated[int, Field(ge=0)]
    steady_train_images_per_s: Positive
    eval_images_per_s: Positive
    final_test_accuracy_pct: Percent
    time_to_target_s: Positive | None
    peak_host_rss_mb: Positive
    peak_device_mem_mb: Annotated[float, Field(ge=0, le=1e18)] | None
    weights_sha256: str
    torch: str
    sitting: Annotated[int, Field(ge=0)] = 0  # which sitting (see Baseline.sittings) ran it
    started_utc: AwareTimestamp | None = None  # when the run started (None: a baseline of before)
    disturbed: bool | None = None  # the machine was busy while it ran; None: not sampled


@dataclass(config=STRICT_SCHEMA)
class Baseline:
    name: str
    created_utc: AwareTimestamp
    config: RunConfig  # its seed is the first run's; `runs` holds every seed
    hardware: Hardware
    data_sha256: str
    runs: Annotated[list[SeedFigures], Field(min_length=1)]
    baseline_schema_version: int = BASELINE_SCHEMA_VERSION
    # How steady_train_images_per_s was taken (bench.storage.throughput), so that runs are judged
    # by the same estimator.
    estimator: EstimatorName = "epoch-median"
    # Sittings: one `run --repeat` group each (ungrouped runs: a gap of SITTING_GAP_S starts a
    # new one). Within a sitting the runs vary by noise_cv; the sittings' medians by drift.
    sittings: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1
    noise_cv: Annotated[float, Field(ge=0, le=10)] | None = None  # None: no sitting of 2+
    drift: Annotated[float, Field(ge=0, le=10)] | None = None  # None: a single sitting
    # The drift assumed while fewer than three sittings measured it (bench.judge.stats): this
    # machine's figure when the baseline was saved, or `baseline save --assumed-drift`.
    assumed_drift: Annotated[float, Field(ge=0, le=10)] = ASSUMED_DRIFT

    # What bitwise-equal weights need (bench.storage.experiment.bitwise_path); None: unknown.
    bitwise_path: dict[str, str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Baseline:
        """What `make_baseline` guarantees, checked again on every baseline read."""
        run_ids = [run.run_id for run in self.runs]
        sittings = {run.sitting for run in self.runs}
        digests: dict[int, set[str]] = {}
        for run in self.runs:
            digests.setdefault(run.seed, set()).add(run.weights_sha256)
        bitwise = self.config.deterministic and bitwise_reruns(self.hardware.device_type)
        two_digests = [seed for seed, found in digests.items() if len(found) > 1]
        refuse_contradictions(
            [
                (usable_name(self.name), unusable_name(self.name)),
                (len(set(run_ids)) == len(run_ids), "a run id appears twice in runs"),
                (
                    # Counted first: a corrupt count (10**400) is refused, never enumerated.
                    len(sittings) == self.sittings and sittings == set(range(len(sittings))),
                    f"runs in sittings {sorted(sittings)} for sittings {self.sittings}",
                ),
                (
                    (self.drift is None) == (self.sittings == 1),
                    "drift must be given from 2 sittings",
                ),
                (
                    (self.noise_cv is None)
                    == (max(Counter(run.sitting for run in self.runs).values()) == 1),
                    "noise_cv must be given when a sitting has 2 or more runs",
                ),
                (
                    not (bitwise and two_digests),
                    f"seed {two_digests[:1]} has two weights digests under strict determinism",
                ),
            ]
        )
        return self

    def seed_figures(self, seed: int) -> SeedFigures | None:
        return next((run for run in self.runs if run.seed == seed), None)

    @property
    def identity(self) -> Identity:
        return identity(self.config, self.hardware, self.data_sha256)


BASELINE_SCHEMA = TypeAdapter(Baseline)


# A file name is at most 255 bytes on the usual file systems; the name gets ".json".
MAX_NAME_BYTES = 250


def usable_name(name: str) -> bool:
    """A file name in the baselines folder: not empty, no folder, not hidden, no control
    characters, not too long."""
    return (
        bool(name)
        and name.isprintable()
        and "/" not in name
        and not name.startswith(".")
        and len(name.encode()) <= MAX_NAME_BYTES
    )


def unusable_name(name: str) -> str:
    return (
        f"not a usable baseline name: {name!r} (empty, with a '/' or a control character, "
        f"starting with '.', or over {MAX_NAME_BYTES} bytes)"
    )


SITTING_GAP_S = 600


def sittings_of(results: list[RunResult]) -> list[int]:
    """Each result's sitting, numbered in time order of first appearance: one per `run
    --repeat` group, however its runs interleave with others; ungrouped results share one
    while no gap between their starts exceeds SITTING_GAP_S."""
    keys: list[object] = [None] * len(results)
    previous = None  # the last ungrouped result: its start and its key
    for index in sorted(range(len(results)), key=lambda i: results[i].created_utc):
        result = results[index]
        if result.group is not None:
            keys[index] = ("group", result.group)
            continue
        started = datetime.fromisoformat(result.created_utc)
        if previous and (started - previous[0]).total_seconds() <= SITTING_GAP_S:
            keys[index] = previous[1]
        else:
            keys[index] = ("ungrouped", index)
        previous = (started, keys[index])
    order = sorted(range(len(results)), key=lambda i: results[i].created_utc)
    numbers = {key: number for number, key in enumerate(dict.fromkeys(keys[i] for i in order))}
    return [numbers[key] for key in keys]


def spread_of(rates: list[float], sittings: list[int]) -> tuple[float | None, float | None]:
    """The within-sitting coefficient of variation (pooled over sittings of 2+ runs) and the
    drift: the coefficient of variation of the sittings' medians (None for one sitting)."""
    by_sitting: dict[int, list[float]] = {}
    for rate, sitting in zip(rates, sittings, strict=True):
        by_sitting.setdefault(sitting, []).append(rate)
    # Pooled by degrees of freedom, as a variance (an average of standard deviations is biased
    # low and weighs a sitting of 2 runs like one of 20).
    within = [
        (len(rates) - 1, (statistics.stdev(rates) / statistics.fmean(rates)) ** 2)
        for rates in by_sitting.values()
        if len(rates) > 1
    ]
    medians = [statistics.median(rates) for rates in by_sitting.values()]
    dof = sum(count for count, _ in within)
    noise = math.sqrt(sum(count * variance for count, variance in within) / dof) if dof else None
    drift = statistics.stdev(medians) / statistics.fmean(medians) if len(medians) > 1 else None
    return noise, drift


def figures_of(result: RunResult, sitting: int = 0) -> SeedFigures:
    summary = result.summary
    return SeedFigures(
        run_id=result.run_id,
        seed=result.config.seed,
        steady_train_images_per_s=summary.steady_train_images_per_s,
        eval_images_per_s=summary.eval_images_per_s,
        final_test_accuracy_pct=summary.final_test_accuracy_pct,
        time_to_target_s=summary.time_to_target_s,
        peak_host_rss_mb=summary.peak_host_rss_mb,
        peak_device_mem_mb=summary.peak_device_mem_mb,
        weights_sha256=result.weights_sha256,
        torch=result.environment.torch,
        sitting=sitting,
        started_utc=result.created_utc,
        disturbed=result.disturbance.disturbed if result.disturbance else None,
    )


def make_baseline(
    results: list[RunResult], name: str | None = None, assumed_drift: float = ASSUMED_DRIFT
) -> Baseline:
    """One baseline from results of one config on one piece of hardware, one per seed."""
    if not results:
        raise BaselineError("no results given")
    if name is not None and not usable_name(name):
        raise BaselineError(unusable_name(name))
    first = results[0]
    if not identity_of(first).machine_known:
        raise BaselineError(
            f"{first.run_id} does not know its machine (a file older than the machine "
            "fingerprint): a baseline needs runs made by this version"
        )
    for result in results[1:]:
        differences = identity_of(result).differences(identity_of(first))
        if differences:
            raise BaselineError(
                f"{result.run_id} does not match {first.run_id}: {', '.join(differences)}"
            )
        if result.summary.estimator != first.summary.estimator:
            raise BaselineError(
                f"{result.run_id} took its throughput as the "
                f"{LABELS[result.summary.estimator]}, {first.run_id} as the "
                f"{LABELS[first.summary.estimator]}"
            )
    digests: dict[int, str] = {}
    for result in results:
        seen = digests.setdefault(result.config.seed, result.weights_sha256)
        if result.arithmetic.bitwise_reruns and seen != result.weights_sha256:
            raise BaselineError(
                f"seed {result.config.seed} gave different weights in two runs: a baseline "
                "needs reproducible runs"
            )
    sittings = sittings_of(results)
    noise, drift = spread_of(
        [result.summary.steady_train_images_per_s for result in results], sittings
    )
    figures = [
        figures_of(result, sitting) for result, sitting in zip(results, sittings, strict=True)
    ]
    return Baseline(
        name=default_name(first) if name is None else name,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        config=replace(first.config),
        hardware=hardware_of(first.environment),
        data_sha256=first.data.sha256,
        runs=sorted(figures, key=lambda f: (f.sitting, f.seed)),
        estimator=first.summary.estimator,
        sittings=max(sittings) + 1,
        noise_cv=noise,
        drift=drift,
        assumed_drift=assumed_drift,
        bitwise_path=bitwise_path(first),
    )


def save_baseline(baseline: Baseline, folder: Path, force: bool = False) -> Path:
    path = folder / f"{baseline.name}.json"
    try:
        not_a_folder = folder.exists() and not folder.is_dir()
        taken = path.exists()
    except OSError as error:  # a name too long, a folder that may not be searched
        raise WriteError(path, error.strerror or type(error).__name__) from None
    if not_a_folder:
        raise BaselineError(f"{folder} is not a folder")
    if taken and not force:
        raise BaselineError(f"{path} exists; pass --force to replace it")
    if taken:
        _refuse_other_machine(path, baseline)
    write_json_atomic(path, asdict(baseline), replace=force)
    return path


def _refuse_other_machine(path: Path, baseline: Baseline) -> None:
    """--force replaces a baseline of this machine, never one of another machine that happens
    to have the name (a file that is no baseline at all may be replaced)."""
    try:
        existing = baseline_from_dict(*read_document(path))
    except ResultFileError:
        return
    if existing.identity.machine != baseline.identity.machine:
        differences = differing(dict(baseline.identity.machine), dict(existing.identity.machine))
        raise BaselineError(
            f"{path} is the baseline of another machine ({', '.join(differences)}); --force "
            "replaces this machine's only: give this one another --name"
        )


def _baseline_1_to_2(document: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 keyed baselines by the data's digest too: unknown before, so a schema 1
    baseline matches no run."""
    document.setdefault("data_sha256", UNKNOWN)
    return document


def _baseline_2_to_3(document: dict[str, Any]) -> dict[str, Any]:
    """Schema 3 keys the machine by its fingerprint and records the arithmetic path: unknown
    before, so such a baseline judges no run (its machine matches none)."""
    if isinstance(document.get("hardware"), dict):
        document["hardware"].update(cpu=None, isa=None, gpu=None)
    document["bitwise_path"] = None
    return document


def _baseline_3_to_4(document: dict[str, Any]) -> dict[str, Any]:
    """Schema 4 names the accelerator's machine key in words of no one vendor: `gpu` (in the
    hardware and the bitwise path) becomes `accelerator`, its value unchanged."""
    for name in ("hardware", "bitwise_path"):
        (part,) = member_objects(document, name) or [{}]
        if "gpu" in part:
            if "accelerator" in part:
                raise ResultFileError(f"{name}: schema 3 has `gpu`, not `accelerator`")
            part["accelerator"] = part.pop("gpu")
    return document


BASELINE_UPGRADES: dict[int, Upgrade] = {
    1: _baseline_1_to_2,
    2: _baseline_2_to_3,
    3: _baseline_3_to_4,
}


def baseline_from_dict(data: Any, raw: str | bytes | None = None) -> Baseline:
    """A baseline from its parsed JSON, upgraded from an older schema (see RunResult)."""
    current = upgrade(
        data, BASELINE_MARKER, BASELINE_SCHEMA_VERSION, BASELINE_UPGRADES, "baseline schema version"
    )
    return validate_document(BASELINE_SCHEMA, current, raw if current is data else None)


def load_baselines(path: Path) -> tuple[list[Baseline], list[tuple[Path, str]]]:
    """Every baseline in `path` (a file, or a folder searched recursively), and the files that
    could not be read as one, with the reason. In a folder, results, sweeps and benchmark
    exports kept beside the baselines are passed over; a file given by name must be a
    baseline."""
    named = not path.is_dir()
    baselines, problems = [], []
    for file in json_files(path):
        try:
            data, raw = read_document(file)
            kind = document_kind(data)
            if kind not in (BASELINE, None):
                if named:
                    problems.append((file, f"not a baseline but a {kind} document"))
                continue
            baselines.append(baseline_from_dict(data, raw))
        except ResultFileError as error:
            problems.append((file, str(error)))
    return baselines, problems
