"""Verdicts: which baseline runs are judged against, and the judgements. Pure.

Each run alone is checked against the same seed in the baseline (weights bitwise, accuracy
within the tolerance). Speed and accuracy over seeds are judged per group of runs (one
experiment × implementation × machine) against the baseline's runs, with an effect, its
interval and the margin as an equivalence band (bench.judge.stats).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.config.experiment import as_single_process, bitwise_path, differing, identity_of
from bench.config.settings import RunConfig, Tolerances
from bench.judge.stats import (
    INCONCLUSIVE,
    LESS_ACCURATE,
    MIN_RUNS,
    SAME,
    AccuracyEffect,
    SpeedEffect,
    compare_accuracies,
    compare_to_baseline,
)
from bench.storage.baselines import Baseline
from bench.storage.results import RunResult
from bench.storage.throughput import BLOCK_ESTIMATORS, EPOCH_MEDIAN, estimate

OK, FASTER, SLOWER = "ok", "faster", "slower"
DIFFERENT_WEIGHTS, NO_BASELINE, NO_SEED = "different weights", "no baseline", "seed not in baseline"
NO_MACHINE_BASELINE = "no baseline for this machine"
NOT_BITWISE = "not bitwise comparable"  # the digest is not judged; accuracy decides
REGRESSIONS = (SLOWER, LESS_ACCURATE, DIFFERENT_WEIGHTS)


@dataclass
class RunRow:
    path: Path
    result: RunResult
    verdicts: list[str]  # this run against the same seed: ok, different weights, less accurate
    baseline: str | None = None
    why_no_baseline: str | None = None
    throughput_delta_pct: float | None = None  # against the baseline's median
    accuracy_delta_points: float | None = None  # against the same seed


@dataclass
class GroupVerdict:
    """A group of runs against its baseline: speed over runs, accuracy over seeds."""

    label: str  # experiment · implementation · device
    baseline: str
    speed: SpeedEffect | None  # None: why_no_speed
    accuracy: AccuracyEffect
    why_no_speed: str | None = None

    @property
    def verdicts(self) -> list[str]:
        return [self.speed.verdict if self.speed else INCONCLUSIVE, self.accuracy.verdict]


def key_differences(result: RunResult, baseline: Baseline) -> list[str]:
    """What part of the identity differs, as 'name run≠baseline' phrases; an unknown machine
    (an older file) differs from every machine."""
    ours, theirs = identity_of(result), baseline.identity
    differences = ours.differences(theirs)
    if not (ours.machine_known and theirs.machine_known) and not differences:
        differences.append("machine unknown (a file older than the machine fingerprint)")
    return differences


def find_baseline(result: RunResult, baselines: list[Baseline]) -> tuple[Baseline | None, str]:
    """The baseline of the same experiment × implementation × machine, or None and why the
    closest one did not match: NO_MACHINE_BASELINE first where one of this experiment and
    implementation exists but on another (or an unknown) machine, with what differs and how to
    record one."""
    if not baselines:
        return None, "none recorded"
    work = identity_of(result).work
    same_work = [b for b in baselines if b.identity.work == work]
    ranked = sorted(same_work or baselines, key=lambda b: len(key_differences(result, b)))
    differences = key_differences(result, ranked[0])
    if not differences:
        return ranked[0], ""
    if same_work:
        return None, (
            f"{NO_MACHINE_BASELINE}: closest is {ranked[0].name} ({', '.join(differences)}); "
            f"record one with: {record_command(result)}"
        )
    return None, f"closest is {ranked[0].name}: " + ", ".join(differences)


def record_command(result: RunResult) -> str:
    """The commands that record a baseline of this run's experiment on this machine."""
    config, default = result.config, RunConfig(device="")
    options = [f"-d {config.device.split(':')[0]}", f"--loader {config.loader}"]
    for name, option in RECORD_OPTIONS.items():
        if getattr(config, name) != getattr(default, name):
            options.append(f"{option} {getattr(config, name)}")
    if result.environment.math and result.environment.math.portable:
        options.append("--portable")
    folder = "results/this-machine"
    return (
        f"mnist-bench run {' '.join(options)} --repeat 5 --out {folder} && "
        f"mnist-bench baseline save {folder}"
    )


# The run options that change the experiment or implementation, by RunConfig field.
RECORD_OPTIONS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "eval_batch_size": "--eval-batch-size",
    "lr": "--lr",
    "precision": "--precision",
    "threads": "--threads",
    "max_steps_per_epoch": "--max-steps",
}


def bitwise_differences(result: RunResult, baseline: Baseline) -> list[str]:
    """Why the run's weights need not equal the baseline's same seed bit for bit, as 'name
    run≠baseline' phrases; empty when they must be equal."""
    if not result.arithmetic.bitwise_reruns:
        return [f"determinism {result.arithmetic.determinism}"]
    if baseline.bitwise_path is None:
        return ["the baseline's arithmetic path is unknown"]
    return differing(bitwise_path(result), baseline.bitwise_path)


def single_process_reference(
    result: RunResult, baselines: list[Baseline]
) -> tuple[str, float] | None:
    """A one-process baseline of the same experiment and implementation on the same machine,
    its figures taken like a data-parallel run's (the median of epochs: ranks time no
    blocks)."""
    wanted = as_single_process(identity_of(result))
    for baseline in baselines:
        if baseline.estimator != EPOCH_MEDIAN or baseline.config.world_size != 1:
            continue
        if as_single_process(baseline.identity) == wanted:
            rate = statistics.median(run.steady_train_images_per_s for run in baseline.runs)
            return baseline.name, rate
    return None


def rate_as(result: RunResult, estimator: str) -> float | None:
    """The run's training throughput by the baseline's `estimator`, from its stored samples;
    None when it lacks them (a block estimator, a run without blocks)."""
    if estimator == result.summary.estimator:
        return result.summary.steady_train_images_per_s
    if estimator in BLOCK_ESTIMATORS and not any(e.block_images_per_s for e in result.epochs):
        return None
    return estimate(result.epochs, estimator)


def judge_run(path: Path, result: RunResult, baseline: Baseline, tolerances: Tolerances) -> RunRow:
    """One run against the same seed's figures in `baseline` (when it has that seed)."""
    rate = rate_as(result, baseline.estimator)
    median = statistics.median(run.steady_train_images_per_s for run in baseline.runs)
    reference = baseline.seed_figures(result.config.seed)
    row = RunRow(
        path=path,
        result=result,
        verdicts=[],
        baseline=baseline.name,
        throughput_delta_pct=None if rate is None else 100 * (rate / median - 1),
    )
    if reference is None:
        row.verdicts = [NO_SEED]
        return row
    row.accuracy_delta_points = (
        result.summary.final_test_accuracy_pct - reference.final_test_accuracy_pct
    )
    apart = bitwise_differences(result, baseline)
    if not apart and result.weights_sha256 != reference.weights_sha256:
        row.verdicts.append(DIFFERENT_WEIGHTS)
    if row.accuracy_delta_points < -tolerances.accuracy_points:
        row.verdicts.append(LESS_ACCURATE)
    row.verdicts = row.verdicts or [OK]
    if apart:  # accuracy decides
        row.verdicts.append(f"{NOT_BITWISE}: {', '.join(apart)}")
    return row


def _per_seed(pairs: list[tuple[int, float]]) -> list[float]:
    """One accuracy per distinct seed (the mean of its runs): seeds, not reruns, are the
    replicates of accuracy."""
    by_seed: dict[int, list[float]] = {}
    for seed, accuracy in pairs:
        by_seed.setdefault(seed, []).append(accuracy)
    return [statistics.fmean(values) for values in by_seed.values()]


def judge_group(
    label: str, rows: list[RunRow], baseline: Baseline, tolerances: Tolerances
) -> GroupVerdict:
    """The group's speed over its runs and accuracy over its seeds, against `baseline`."""
    baseline_rates = [run.steady_train_images_per_s for run in baseline.runs]
    rates = [rate_as(row.result, baseline.estimator) for row in rows]
    speed, why_no_speed = None, None
    known = [rate for rate in rates if rate is not None]
    if len(known) < len(rates):
        why_no_speed = (
            f"the baseline's figures are the {baseline.estimator}, and a run has no blocks"
        )
    else:
        speed = compare_to_baseline(
            baseline_rates,
            known,
            tolerances.throughput_pct / 100,
            noise_cv=baseline.noise_cv,
            drift=baseline.drift,
            sittings=baseline.sittings,
        )
    seeds_before = _per_seed([(run.seed, run.final_test_accuracy_pct) for run in baseline.runs])
    seeds_now = _per_seed(
        [(row.result.config.seed, row.result.summary.final_test_accuracy_pct) for row in rows]
    )
    accuracy = compare_accuracies(seeds_before, seeds_now, tolerances.accuracy_points)
    few = min(len(seeds_before), len(seeds_now)) < MIN_RUNS
    if few and all(row.accuracy_delta_points is not None for row in rows):
        # Too few seeds for a spread, but each was checked against the same seed, exactly.
        worse = any(LESS_ACCURATE in row.verdicts for row in rows)
        accuracy.verdict = LESS_ACCURATE if worse else SAME
        accuracy.reason = "judged seed by seed against the baseline's same seeds"
    return GroupVerdict(label, baseline.name, speed, accuracy, why_no_speed)
