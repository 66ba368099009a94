"""Verdicts: which baseline a run is judged against, and what the judgement is. Pure."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.config.experiment import as_single_process, identity_of
from bench.config.settings import Tolerances
from bench.storage.baselines import Baseline
from bench.storage.results import RunResult

OK, FASTER, SLOWER = "ok", "faster", "slower"
LESS_ACCURATE, DIFFERENT_WEIGHTS, NO_BASELINE = "less accurate", "different weights", "no baseline"
REGRESSIONS = (SLOWER, LESS_ACCURATE, DIFFERENT_WEIGHTS)


@dataclass
class RunRow:
    path: Path
    result: RunResult
    verdicts: list[str]
    baseline: str | None = None
    why_no_baseline: str | None = None
    throughput_delta_pct: float | None = None
    accuracy_delta_points: float | None = None


def key_differences(result: RunResult, baseline: Baseline) -> list[str]:
    """What part of the identity differs, as 'name run≠baseline' phrases."""
    differences = identity_of(result).differences(baseline.identity)
    if not differences and baseline.seed_figures(result.config.seed) is None:
        seeds = sorted(run.seed for run in baseline.runs)
        differences.append(f"seed {result.config.seed} not in {seeds}")
    return differences


def find_baseline(result: RunResult, baselines: list[Baseline]) -> tuple[Baseline | None, str]:
    """The matching baseline, or None and why the closest one did not match."""
    if not baselines:
        return None, "none recorded"
    ranked = sorted(baselines, key=lambda b: len(key_differences(result, b)))
    differences = key_differences(result, ranked[0])
    if not differences:
        return ranked[0], ""
    return None, f"closest is {ranked[0].name}: " + ", ".join(differences)


def single_process_reference(
    result: RunResult, baselines: list[Baseline]
) -> tuple[str, float] | None:
    """A one-process baseline of the same experiment and implementation on the same machine."""
    wanted = as_single_process(identity_of(result))
    for baseline in baselines:
        if baseline.config.world_size == 1 and as_single_process(baseline.identity) == wanted:
            rate = statistics.fmean(run.steady_train_images_per_s for run in baseline.runs)
            return baseline.name, rate
    return None


def judge(path: Path, result: RunResult, baseline: Baseline, tolerances: Tolerances) -> RunRow:
    reference = baseline.seed_figures(result.config.seed)
    assert reference is not None, "find_baseline only matches a baseline holding this seed"
    rates = [run.steady_train_images_per_s for run in baseline.runs]
    rate = result.summary.steady_train_images_per_s
    throughput_delta = 100 * (rate / statistics.fmean(rates) - 1)
    accuracy_delta = result.summary.final_test_accuracy_pct - reference.final_test_accuracy_pct
    verdicts = []
    if result.arithmetic.bitwise_reruns and result.weights_sha256 != reference.weights_sha256:
        verdicts.append(DIFFERENT_WEIGHTS)
    if accuracy_delta < -tolerances.accuracy_points:
        verdicts.append(LESS_ACCURATE)
    # Outside the range the baseline's seeds spanned, by more than the tolerance: on a shared
    # machine that range is the noise already seen.
    if rate < min(rates) * (1 - tolerances.throughput_pct / 100):
        verdicts.append(SLOWER)
    elif rate > max(rates) * (1 + tolerances.throughput_pct / 100):
        verdicts.append(FASTER)
    return RunRow(
        path=path,
        result=result,
        verdicts=verdicts or [OK],
        baseline=baseline.name,
        throughput_delta_pct=throughput_delta,
        accuracy_delta_points=accuracy_delta,
    )
