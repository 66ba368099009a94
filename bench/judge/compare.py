"""`compare`: results side by side, judged against baselines, grouped by experiment ×
implementation × machine, and paired across devices by experiment and seed.

Produces one plain `Comparison`; bench.show.tables renders it as a table, markdown, CSV or JSON.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.config.settings import Tolerances
from bench.errors import ResultFileError
from bench.judge.stats import REGRESSIONS, SITTINGS_FOR_DRIFT, SpeedEffect, Spread, Verdict
from bench.judge.verdicts import (
    GroupVerdict,
    RunRow,
    find_baseline,
    judge_group,
    judge_run,
)
from bench.storage.baselines import Baseline, figures_of
from bench.storage.experiment import (
    Identity,
    Key,
    experiment_label,
    identity_of,
    implementation_label,
)
from bench.storage.files import load_recorded_weights
from bench.storage.results import RunResult


@dataclass
class Group:
    """Runs of one experiment × implementation on one machine: the seeds' spread."""

    identity: Identity
    experiment: str
    implementation: str
    device: str
    device_type: str
    runs: int
    seeds: list[int]
    accuracy_pct: Spread
    train_images_per_s: Spread
    geomean_train_images_per_s: float  # the typical rate: speed is judged by their ratios
    time_to_target_s: Spread | None
    reached_target: int
    # Ratio of geometric means against the fastest CPU group of the experiment.
    speedup_vs_cpu: float | None = None
    cpu_reference: str | None = None  # that group's implementation

    @property
    def label(self) -> str:
        """Experiment · implementation · device, as its verdict against a baseline is named."""
        return f"{self.experiment} · {self.implementation} · {self.device}"


@dataclass
class CrossDevice:
    """One seed of one experiment on the CPU and on another device."""

    experiment: str
    seed: int
    cpu_run: str
    cpu_implementation: str
    other_run: str
    other_device: str
    other_implementation: str
    accuracy_delta_points: float  # other minus CPU
    relative_l2: float | None  # ‖w_other − w_cpu‖ / ‖w_cpu‖, when both saved weights


@dataclass
class Comparison:
    rows: list[RunRow]
    groups: list[Group]
    cross_device: list[CrossDevice]
    problems: list[tuple[Path, str]] = field(default_factory=list)  # skipped results
    baseline_problems: list[tuple[Path, str]] = field(default_factory=list)  # unreadable
    verdicts: list[GroupVerdict] = field(default_factory=list)  # groups against baselines
    left_out: str | None = None  # runs not compared (earlier sittings), e.g. '1,994 runs in …'

    def verdict_of(self, identity: Identity) -> GroupVerdict | None:
        """The verdict of the group of that identity against its baseline; None when none
        judged it (no baseline, or its runs are the baseline's own)."""
        return next((v for v in self.verdicts if v.identity == identity), None)

    @property
    def regressions(self) -> list[str]:
        """Each verdict that is evidence of a regression, as 'what: verdict'."""
        found = [
            f"run {row.result.run_id}: {verdict}"
            for row in self.rows
            for verdict in row.verdicts
            if verdict in REGRESSIONS
        ]
        for group in self.verdicts:
            if group.speed is not None and group.speed.verdict in REGRESSIONS:
                found.append(f"speed of {group.label}: {group.speed.describe()}")
            if group.accuracy.verdict in REGRESSIONS:
                found.append(f"accuracy of {group.label}: {group.accuracy.describe()}")
        return found

    @property
    def why_cannot_judge(self) -> str | None:
        """Why a regression gate cannot judge this comparison at all: a baseline it could not
        read (it might be the one a run should have been judged against), or a run that no
        baseline judged — "no baseline" is not "ok"."""
        reasons = [f"baseline {path}: {reason}" for path, reason in self.baseline_problems]
        reasons += [
            f"run {row.result.run_id} has no baseline ({row.why_no_baseline})"
            for row in self.rows
            if row.why_no_baseline
        ]
        return _first_of(reasons)

    @property
    def undecided(self) -> str | None:
        """What the evidence could not settle (`--strict` fails on it): an inconclusive verdict,
        with the slowdown it could have missed, or speed that could not be taken."""
        reasons = []
        for group in self.verdicts:
            if group.speed is None:
                reasons.append(f"speed of {group.label}: {group.why_no_speed}")
            elif group.speed.verdict == Verdict.INCONCLUSIVE:
                reasons.append(
                    f"speed of {group.label} could have missed a slowdown of up to "
                    f"{100 * group.speed.could_miss:.0f} %" + _assumed_drift_words(group.speed)
                )
            if group.accuracy.verdict == Verdict.INCONCLUSIVE:
                reasons.append(f"accuracy of {group.label}: {group.accuracy.reason}")
        return _first_of(reasons)


def _assumed_drift_words(speed: SpeedEffect) -> str:
    """Why an inconclusive speed verdict is what to expect against this baseline: a drift
    between sittings it could not measure (fewer than 3 sittings) is assumed, and the interval
    allows for it twice (its sitting and the new one)."""
    if not speed.drift_assumed:
        return ""
    return (
        f" (expected here: the baseline has fewer than {SITTINGS_FOR_DRIFT} sittings, so the "
        f"±{100 * speed.drift:.1f} % drift between sittings is partly assumed and allowed for "
        "twice, its sitting's and this one's; against it identical code ends inconclusive most "
        "of the time (README). To decide, run in one of its sittings or use `mnist-bench ab`)"
    )


def _first_of(reasons: list[str]) -> str | None:
    if not reasons:
        return None
    return reasons[0] + (f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else "")


def run_label(result: RunResult) -> str:
    """Experiment · implementation, as the runs table shows it."""
    return f"{experiment_label(result)} · {implementation_label(result)}"


def _groups(rows: list[RunRow]) -> list[Group]:
    by_identity: dict[Identity, list[RunResult]] = defaultdict(list)
    for row in rows:
        by_identity[identity_of(row.result)].append(row.result)
    groups: dict[Identity, Group] = {}
    for key, results in by_identity.items():
        reached = [
            result.summary.time_to_target_s for result in results if result.summary.time_to_target_s
        ]
        rates = [result.summary.steady_train_images_per_s for result in results]
        groups[key] = Group(
            identity=key,
            experiment=experiment_label(results[0]),
            implementation=implementation_label(results[0]),
            device=results[0].environment.device_name,
            device_type=results[0].environment.device_type,
            runs=len(results),
            seeds=sorted(result.config.seed for result in results),
            accuracy_pct=Spread.of([result.summary.final_test_accuracy_pct for result in results]),
            train_images_per_s=Spread.of(rates),
            geomean_train_images_per_s=statistics.geometric_mean(rates),
            time_to_target_s=Spread.of(reached) if reached else None,
            reached_target=len(reached),
        )
    fastest_cpu: dict[Key, Group] = {}
    for key, group in groups.items():
        best = fastest_cpu.get(key.experiment)
        faster = best is None or group.geomean_train_images_per_s > best.geomean_train_images_per_s
        if group.device_type == "cpu" and faster:
            fastest_cpu[key.experiment] = group
    for key, group in groups.items():
        cpu = fastest_cpu.get(key.experiment)
        if group.device_type != "cpu" and cpu is not None:
            group.speedup_vs_cpu = group.geomean_train_images_per_s / cpu.geomean_train_images_per_s
            group.cpu_reference = cpu.implementation
    return list(groups.values())


def relative_l2(a: dict, b: dict) -> float:
    """‖a − b‖ / ‖b‖ over every tensor of two state_dicts of the same network; ValueError when
    they are not (other keys, shapes or non-float entries) or `b` is all zeros."""
    import torch

    if a.keys() != b.keys():
        raise ValueError(f"the weights hold other tensors ({sorted(a.keys() ^ b.keys())[:3]})")
    for key in b:
        tensors = (a[key], b[key])
        if not all(torch.is_tensor(t) and t.is_floating_point() for t in tensors):
            raise ValueError(f"{key} is not a float tensor in both")
        if tensors[0].shape != tensors[1].shape:
            raise ValueError(f"{key} has shapes {tuple(a[key].shape)} and {tuple(b[key].shape)}")
    difference = sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in b)
    norm = sum(float(b[k].double().pow(2).sum()) for k in b)
    if norm == 0 or not math.isfinite(difference):
        raise ValueError("the distance is undefined (zero or non-finite weights)")
    return math.sqrt(difference / norm)


def _weights_distance(cpu: RunRow, other: RunRow, problems: list[tuple[Path, str]]) -> float | None:
    """The relative L2 distance of two runs' saved weights; None (and a problem) when a file
    is missing, special, corrupt or not the weights its result records."""
    if not (cpu.result.weights_file and other.result.weights_file):
        return None
    cpu_weights = cpu.path.parent / cpu.result.weights_file
    other_weights = other.path.parent / other.result.weights_file
    try:
        return relative_l2(
            load_recorded_weights(other.result, other.path.parent),
            load_recorded_weights(cpu.result, cpu.path.parent),
        )
    except (ResultFileError, ValueError) as error:
        problems.append((other_weights, f"no distance to {cpu_weights}: {error}"))
        return None


def _cross_device(rows: list[RunRow], problems: list[tuple[Path, str]]) -> list[CrossDevice]:
    """Each non-CPU run beside a CPU run of the same experiment and seed (the same loader when
    there is one, since that also feeds the same batches)."""
    by_experiment_seed: dict[tuple[Key, int], list[RunRow]] = defaultdict(list)
    for row in rows:
        by_experiment_seed[(identity_of(row.result).experiment, row.result.config.seed)].append(row)
    pairs = []
    for (_, seed), group in by_experiment_seed.items():
        cpus = [row for row in group if row.result.environment.device_type == "cpu"]
        for other in group:
            if not cpus or other.result.environment.device_type == "cpu":
                continue
            same_loader = [
                row for row in cpus if row.result.config.loader == other.result.config.loader
            ]
            cpu = (same_loader or cpus)[0]
            pairs.append(
                CrossDevice(
                    experiment=experiment_label(other.result),
                    seed=seed,
                    cpu_run=cpu.result.run_id,
                    cpu_implementation=implementation_label(cpu.result),
                    other_run=other.result.run_id,
                    other_device=other.result.environment.device_name,
                    other_implementation=implementation_label(other.result),
                    accuracy_delta_points=other.result.summary.final_test_accuracy_pct
                    - cpu.result.summary.final_test_accuracy_pct,
                    relative_l2=_weights_distance(cpu, other, problems),
                )
            )
    return pairs


def compare(
    results: list[tuple[Path, RunResult]],
    baselines: list[Baseline],
    tolerances: Tolerances,
    problems: list[tuple[Path, str]] | None = None,
    baseline_problems: list[tuple[Path, str]] | None = None,
) -> Comparison:
    rows = []
    judged: dict[tuple[Identity, str], tuple[Baseline, list[RunRow]]] = {}
    for path, result in results:
        baseline, why = find_baseline(result, baselines)
        if baseline is None:
            verdict = (
                Verdict.NO_MACHINE_BASELINE
                if why.startswith(Verdict.NO_MACHINE_BASELINE)
                else Verdict.NO_BASELINE
            )
            rows.append(RunRow(path, result, [verdict], why_no_baseline=why))
            continue
        rows.append(judge_run(path, result, baseline, tolerances))
        own = next((run for run in baseline.runs if run.run_id == result.run_id), None)
        if own is not None and replace(figures_of(result), sitting=own.sitting) == own:
            continue  # the baseline's own run (e.g. still in results/): no evidence against it
        judged.setdefault((identity_of(result), baseline.name), (baseline, []))[1].append(rows[-1])
    rows.sort(
        key=lambda row: (run_label(row.result), row.result.config.device, row.result.config.seed)
    )
    verdicts = [
        judge_group(
            f"{run_label(group[0].result)} · {group[0].result.environment.device_name}",
            group,
            baseline,
            tolerances,
        )
        for baseline, group in judged.values()
    ]
    problems = list(problems or [])
    cross_device = _cross_device(rows, problems)
    return Comparison(
        rows, _groups(rows), cross_device, problems, list(baseline_problems or []), verdicts
    )
