"""Verdicts: which baseline runs are judged against, and the judgements. Pure.

Each run alone is checked against the same seed in the baseline (weights bitwise, accuracy
within the tolerance). Speed and accuracy over seeds are judged per group of runs (one
experiment × implementation × machine) against the baseline's runs, one-sided: a regression
needs evidence and an effect beyond the margin (bench.judge.stats).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha256
from pathlib import Path
from shlex import quote

from bench.config.settings import RunConfig, Tolerances
from bench.judge.stats import (
    MIN_SEEDS,
    AccuracyEffect,
    SpeedEffect,
    Verdict,
    compare_accuracies,
    compare_to_baseline,
)
from bench.storage.baselines import Baseline
from bench.storage.experiment import (
    Identity,
    as_single_process,
    bitwise_path,
    default_name,
    differing,
    identity_of,
)
from bench.storage.results import RunResult
from bench.storage.throughput import BLOCK_ESTIMATORS, EPOCH_MEDIAN, LABELS, estimate


@dataclass
class RunRow:
    path: Path
    result: RunResult
    verdicts: list[Verdict]  # this run against the same seed: ok, different weights, less accurate
    baseline: str | None = None
    why_no_baseline: str | None = None
    throughput_delta_pct: float | None = None  # against the baseline's geometric mean
    accuracy_delta_points: float | None = None  # against the same seed
    # Verdict.NOT_BITWISE: what differs from the baseline's arithmetic path
    not_bitwise: list[str] = field(default_factory=list)

    @property
    def verdict_text(self) -> str:
        """The verdicts as the runs table shows them, with what keeps the bits apart."""
        return ", ".join(
            f"{verdict}: {', '.join(self.not_bitwise)}" if verdict == Verdict.NOT_BITWISE
            else verdict
            for verdict in self.verdicts
        )  # fmt: skip


@dataclass
class GroupVerdict:
    """A group of runs against its baseline: speed over runs, accuracy over seeds."""

    identity: Identity  # the group's: experiment × implementation × machine
    label: str  # experiment · implementation · device, as printed
    baseline: str
    speed: SpeedEffect | None  # None: why_no_speed
    accuracy: AccuracyEffect
    why_no_speed: str | None = None

    @property
    def verdicts(self) -> list[Verdict]:
        return [self.speed.verdict if self.speed else Verdict.INCONCLUSIVE, self.accuracy.verdict]


def key_differences(result: RunResult, baseline: Baseline) -> list[str]:
    """What part of the identity differs, as 'name run≠baseline' phrases; an unknown machine
    (an older file) differs from every machine."""
    ours, theirs = identity_of(result), baseline.identity
    differences = ours.differences(theirs)
    if not (ours.machine_known and theirs.machine_known) and not differences:
        differences.append("machine unknown (a file older than the machine fingerprint)")
    return differences


def find_baseline(result: RunResult, baselines: list[Baseline]) -> tuple[Baseline | None, str]:
    """The baseline of the same experiment × implementation × machine, or None and why: the
    closest one did not match ("no baseline for this machine" first where one of this experiment and
    implementation exists but on another, or an unknown, machine, with what differs and how to
    record one), or several did (which one judges would be a guess)."""
    if not baselines:
        return None, "none recorded"
    work = identity_of(result).work
    same_work = [b for b in baselines if b.identity.work == work]
    ranked = sorted(same_work or baselines, key=lambda b: len(key_differences(result, b)))
    differences = key_differences(result, ranked[0])
    matching = [b.name for b in ranked if not key_differences(result, b)]
    if len(matching) > 1:
        return None, f"{len(matching)} baselines match ({', '.join(matching)}): keep one"
    if not differences:
        return ranked[0], ""
    if same_work:
        return None, (
            f"{Verdict.NO_MACHINE_BASELINE}: closest is {ranked[0].name} "
            f"({', '.join(differences)}); record one with: {record_command(result)}"
        )
    return None, f"closest is {ranked[0].name}: " + ", ".join(differences)


def record_command(result: RunResult) -> str:
    """The commands that record a baseline of this run's experiment, implementation and machine
    here, as they can be pasted: every option that makes the identity (those that default per
    device given explicitly), into a folder of their own, so that its runs are the baseline's
    and nothing else. A data-parallel run is recorded once (`--repeat` runs one process)."""
    config, default = result.config, RunConfig(device="")
    # Values come from a file: quoted for the shell, so that what is pasted is what was meant.
    options = [f"-d {quote(config.device.split(':')[0])}", f"--loader {quote(config.loader)}"]
    for name, option in RECORD_OPTIONS.items():
        if getattr(config, name) != getattr(default, name):
            options.append(f"{option} {quote(str(getattr(config, name)))}")
    if result.environment.device_type == "cpu":  # the threads it ran with are its identity's
        options.append(f"--threads {result.environment.threads}")
    options.append(f"--optimizer {quote(str(config.optimizer))}")
    options.append("--channels-last" if config.channels_last else "--no-channels-last")
    switches = {
        "--no-deterministic": not config.deterministic,
        "--compile": config.compile,
        "--cuda-graphs": config.cuda_graphs,
        "--per-rank-batch": config.per_rank_batch,
        "--portable": bool(result.environment.math and result.environment.math.portable),
    }
    options += [switch for switch, on in switches.items() if on]
    if config.world_size > 1:
        options.append(f"--nproc-per-node {config.world_size}")
    else:
        options.append("--repeat 5")
    # A folder of this identity's own (short enough to stay whole in a terminal's line).
    folder = f"results/this-machine-{sha256(default_name(result).encode()).hexdigest()[:8]}"
    return (
        f"mnist-bench run {' '.join(options)} --out {folder} && mnist-bench baseline save {folder}"
    )


# The run options that change the experiment or implementation, by RunConfig field, given
# when they differ from the default.
RECORD_OPTIONS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "eval_batch_size": "--eval-batch-size",
    "lr": "--lr",
    "precision": "--precision",
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


def scaling_reference(
    result: RunResult, single: RunResult | None, baselines: list[Baseline]
) -> tuple[str, float] | str:
    """The one-process (name, training images/s) a data-parallel `result` is measured against:
    `single` (a --reference result) when it is this run in one process, else a one-process
    baseline of it; or, in words, why there is none. Taken like the ranks' own figure, the
    median of epochs (ranks time no blocks)."""
    if single is None:
        found = single_process_reference(result, baselines)
        return found or (
            "no one-process baseline of this experiment by the median of epochs (pass "
            "--reference with a one-process result)"
        )
    differences = as_single_process(identity_of(single)).differences(
        as_single_process(identity_of(result))
    )
    if differences:
        return (
            f"--reference {single.run_id} is not this run in one process "
            f"({', '.join(differences[:3])})"
        )
    return single.run_id, estimate(single.epochs, EPOCH_MEDIAN)


def scaling_efficiency_pct(result: RunResult, rate: float) -> float:
    """A data-parallel run's global throughput against its ranks × a one-process `rate`."""
    assert result.distributed is not None
    info = result.distributed
    return 100 * info.global_train_images_per_s / (info.world_size * rate)


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
    typical = statistics.geometric_mean(run.steady_train_images_per_s for run in baseline.runs)
    reference = baseline.seed_figures(result.config.seed)
    row = RunRow(
        path=path,
        result=result,
        verdicts=[],
        baseline=baseline.name,
        throughput_delta_pct=None if rate is None else 100 * (rate / typical - 1),
    )
    if reference is None:
        row.verdicts = [Verdict.NO_SEED]
        return row
    row.accuracy_delta_points = (
        result.summary.final_test_accuracy_pct - reference.final_test_accuracy_pct
    )
    apart = bitwise_differences(result, baseline)
    if not apart and result.weights_sha256 != reference.weights_sha256:
        row.verdicts.append(Verdict.DIFFERENT_WEIGHTS)
    if row.accuracy_delta_points < -tolerances.accuracy_points:
        row.verdicts.append(Verdict.LESS_ACCURATE)
    row.verdicts = row.verdicts or [Verdict.OK]
    if apart:  # accuracy decides
        row.verdicts.append(Verdict.NOT_BITWISE)
        row.not_bitwise = apart
    return row


def sitting_of(results: list[RunResult], baseline: Baseline) -> int | None:
    """The baseline's sitting every run started within — interleaved with its runs: between
    its first and last start, give or take the mean time between them — or None: then a
    drift between sittings separates them."""
    spans: dict[int, list[datetime]] = {}
    for run in baseline.runs:
        if run.started_utc is None:
            return None  # an older baseline: when its runs were taken is not known
        spans.setdefault(run.sitting, []).append(datetime.fromisoformat(run.started_utc))
    # Both times are zone-aware ISO times (the schemas check it), so they compare.
    starts = [datetime.fromisoformat(result.created_utc) for result in results]
    for sitting, times in spans.items():
        first, last = min(times), max(times)
        slack = (last - first) / (len(times) - 1) if len(times) > 1 else timedelta(0)
        if all(first - slack <= start <= last + slack for start in starts):
            return sitting
    return None


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
    # Runs taken within one of the baseline's sittings are judged against that sitting alone,
    # with no drift between them; others against every sitting, allowing for the drift.
    sitting = sitting_of([row.result for row in rows], baseline)
    baseline_rates = [
        run.steady_train_images_per_s
        for run in baseline.runs
        if sitting is None or run.sitting == sitting
    ]
    rates = [rate_as(row.result, baseline.estimator) for row in rows]
    speed, why_no_speed = None, None
    known = [rate for rate in rates if rate is not None]
    if len(known) < len(rates):
        why_no_speed = (
            f"the baseline's figures are the {LABELS[baseline.estimator]}, and a run has no blocks"
        )
    else:
        speed = compare_to_baseline(
            baseline_rates,
            known,
            tolerances.throughput_pct / 100,
            noise_cv=baseline.noise_cv,
            drift=baseline.drift,
            sittings=baseline.sittings if sitting is None else 1,
            assumed_drift=baseline.assumed_drift
            if tolerances.assumed_drift_pct is None
            else tolerances.assumed_drift_pct / 100,
            same_sitting=sitting is not None,
        )
    seeds_before = _per_seed([(run.seed, run.final_test_accuracy_pct) for run in baseline.runs])
    seeds_now = _per_seed(
        [(row.result.config.seed, row.result.summary.final_test_accuracy_pct) for row in rows]
    )
    accuracy = compare_accuracies(seeds_before, seeds_now, tolerances.accuracy_points)
    few = min(len(seeds_before), len(seeds_now)) < MIN_SEEDS
    if few and all(row.accuracy_delta_points is not None for row in rows):
        # Too few seeds for a spread, but each was checked against the same seed, exactly.
        worse = any(Verdict.LESS_ACCURATE in row.verdicts for row in rows)
        accuracy.verdict = Verdict.LESS_ACCURATE if worse else Verdict.OK
        accuracy.reason = "judged seed by seed against the baseline's same seeds"
    identity = identity_of(rows[0].result)
    return GroupVerdict(identity, label, baseline.name, speed, accuracy, why_no_speed)
