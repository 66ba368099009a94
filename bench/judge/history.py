"""History: the training throughput of one experiment × implementation × machine over its
sittings (commits, torch versions, days), and the change points in it.

Change points are found as asv and Otava find them, by a change-point library over the series
in time order: PELT (`ruptures`) on each run's log throughput, with a penalty scaled to the
run-to-run noise (BIC-like: 2 σ² log n). Within a sitting the code and torch are the same, so
each change found is placed at the nearest boundary between sittings. Like Otava's minimum
magnitude, a change is kept only when it is beyond the speed margin: a step within the margin is
not a change that matters here.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.judge.compare import run_label
from bench.judge.verdicts import find_baseline, rate_as
from bench.storage.baselines import Baseline, sittings_of
from bench.storage.experiment import Identity, identity_of
from bench.storage.results import RunResult

PENALTY_PER_CHANGE = 2.0  # × σ² log n
MIN_SEGMENT_RUNS = 2  # a change needs two runs either side of it


@dataclass
class HistoryRun:
    run_id: str
    started_utc: datetime
    train_images_per_s: float
    commit: str | None  # None: not recorded (a baseline keeps no commit)
    torch: str


@dataclass
class Sitting:
    """The runs of one sitting at one commit and torch version, in time order."""

    runs: list[HistoryRun]
    source: str  # "results", or "baseline": runs only the history's baseline holds

    @property
    def median_images_per_s(self) -> float:
        return statistics.median(run.train_images_per_s for run in self.runs)

    @property
    def label(self) -> str:
        """e.g. 'a1b2c3d · torch 2.15.0 · 2026-11-26'."""
        first = self.runs[0]
        commit = first.commit[:7] if first.commit else "commit ?"
        return f"{commit} · torch {first.torch} · {first.started_utc:%Y-%m-%d}"


@dataclass
class ChangePoint:
    first_sitting: int  # the index of the sitting whose run starts the new level
    last_run_before: HistoryRun
    first_run_after: HistoryRun
    before_images_per_s: float  # median of the runs since the previous change
    after_images_per_s: float  # median of the runs up to the next change

    @property
    def change_pct(self) -> float:
        return 100 * (self.after_images_per_s / self.before_images_per_s - 1)

    @property
    def commits(self) -> str:
        """Where it happened: 'between a1b2c3d and d4e5f6a', or within one commit."""
        before, after = self.last_run_before, self.first_run_after
        torch = f", torch {before.torch} → {after.torch}" if before.torch != after.torch else ""
        if before.commit is None and after.commit is None:
            return f"between sittings whose commit was not recorded{torch}"
        if before.commit == after.commit and not torch:
            return f"within {_short(before.commit)}: the code did not change, the machine did"
        return f"between {_short(before.commit)} and {_short(after.commit)}{torch}"

    def describe(self) -> str:
        """e.g. '-15.2 % (26,000 → 22,050 images/s) between a1b2c3d and d4e5f6a'."""
        return (
            f"{self.change_pct:+.1f} % ({self.before_images_per_s:,.0f} → "
            f"{self.after_images_per_s:,.0f} images/s) {self.commits}"
        )


def _short(commit: str | None) -> str:
    return commit[:7] if commit else "an unrecorded commit"


@dataclass
class History:
    label: str  # experiment · implementation · device
    sittings: list[Sitting]
    margin_pct: float  # changes within it are not kept
    baseline: str | None = None
    baseline_median_images_per_s: float | None = None
    baseline_drift: float | None = None  # the baseline's between-sitting CV
    change_points: list[ChangePoint] = field(default_factory=list)
    noise_cv: float | None = None  # the run-to-run noise the penalty was scaled by

    @property
    def runs(self) -> list[HistoryRun]:
        return [run for sitting in self.sittings for run in sitting.runs]


def _started(run_id: str, fallback: str) -> datetime:
    """When a run started: its id's leading UTC time, else `fallback` (ISO)."""
    try:
        return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromisoformat(fallback)


def _from_result(result: RunResult, estimator: str | None) -> HistoryRun:
    """The run, its throughput taken by `estimator` (the baseline's) where it can be."""
    rate = rate_as(result, estimator) if estimator else None
    return HistoryRun(
        run_id=result.run_id,
        started_utc=_started(result.run_id, result.created_utc),
        train_images_per_s=rate or result.summary.steady_train_images_per_s,
        commit=result.environment.git_commit,
        torch=result.environment.torch,
    )


def _sittings(results: list[RunResult], baseline: Baseline | None) -> list[Sitting]:
    """The results' sittings (a new one at each commit or torch version too), and the
    baseline's sittings for its runs that are not among the results; in time order."""
    grouped: dict[tuple[object, ...], Sitting] = {}
    for result, number in zip(results, sittings_of(results), strict=True):
        run = _from_result(result, baseline.estimator if baseline else None)
        key: tuple[object, ...] = ("results", number, run.commit, run.torch)
        grouped.setdefault(key, Sitting([], "results")).runs.append(run)
    if baseline is not None:
        known = {result.run_id for result in results}
        for figures in baseline.runs:
            if figures.run_id in known:
                continue
            run = HistoryRun(
                run_id=figures.run_id,
                started_utc=_started(figures.run_id, baseline.created_utc),
                train_images_per_s=figures.steady_train_images_per_s,
                commit=None,
                torch=figures.torch,
            )
            key = ("baseline", figures.sitting, figures.torch)
            grouped.setdefault(key, Sitting([], "baseline")).runs.append(run)
    sittings = list(grouped.values())
    for sitting in sittings:
        sitting.runs.sort(key=lambda run: run.started_utc)
    return sorted(sittings, key=lambda sitting: sitting.runs[0].started_utc)


def run_to_run_noise(sittings: list[Sitting]) -> float | None:
    """The standard deviation of log throughput within sittings (pooled); without a sitting of
    two runs, from successive differences (halved in variance); None under three runs."""
    logs = [[math.log(run.train_images_per_s) for run in s.runs] for s in sittings]
    within = [value - statistics.fmean(side) for side in logs if len(side) > 1 for value in side]
    degrees = sum(len(side) - 1 for side in logs if len(side) > 1)
    if degrees >= 2:
        return math.sqrt(sum(residual * residual for residual in within) / degrees)
    series = [value for side in logs for value in side]
    if len(series) < 3:
        return None
    steps = [b - a for a, b in zip(series, series[1:], strict=False)]
    return statistics.median(abs(step) for step in steps) / (0.6745 * math.sqrt(2))


def change_points(sittings: list[Sitting], margin_pct: float) -> list[ChangePoint]:
    """Changes of level in the runs' log throughput (PELT, l2 cost), kept beyond the margin."""
    runs = [run for sitting in sittings for run in sitting.runs]
    noise = run_to_run_noise(sittings)
    if noise is None or len(runs) < 2 * MIN_SEGMENT_RUNS or len(sittings) < 2:
        return []  # one sitting has nothing between sittings to place a change at
    import numpy as np
    import ruptures

    signal = np.log([run.train_images_per_s for run in runs]).reshape(-1, 1)
    # A floor on the noise: identical figures would otherwise make every step a change.
    sigma = max(noise, 1e-4)
    penalty = PENALTY_PER_CHANGE * sigma**2 * math.log(len(runs))
    ends = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT_RUNS, jump=1).fit(signal).predict(penalty)
    # Where each sitting after the first starts, as a run index.
    boundaries = list(itertools.accumulate(len(s.runs) for s in sittings[:-1]))
    starts = sorted({min(boundaries, key=lambda b: (abs(b - end), b)) for end in ends[:-1]})
    edges = [0, *starts, len(runs)]
    medians = [
        statistics.median(run.train_images_per_s for run in runs[start:end])
        for start, end in itertools.pairwise(edges)
    ]
    found = []
    for segment, start in enumerate(starts, 1):
        before, after = medians[segment - 1], medians[segment]
        if abs(100 * (after / before - 1)) > margin_pct:
            sitting = boundaries.index(start) + 1
            found.append(ChangePoint(sitting, runs[start - 1], runs[start], before, after))
    return found


def histories(
    results: list[RunResult], baselines: list[Baseline], margin_pct: float
) -> list[History]:
    """One history per experiment × implementation × machine that results or baselines hold,
    with its baseline's median and drift and the change points beyond `margin_pct`."""
    by_identity: dict[Identity, list[RunResult]] = defaultdict(list)
    for result in results:
        by_identity[identity_of(result)].append(result)
    found: list[History] = []
    used: set[str] = set()
    for mine in by_identity.values():
        baseline, _ = find_baseline(mine[0], baselines)
        label = f"{run_label(mine[0])} · {mine[0].environment.device_name}"
        found.append(_history(label, mine, baseline, margin_pct))
        used.update([baseline.name] if baseline else [])
    found += [
        _history(baseline.name, [], baseline, margin_pct)
        for baseline in baselines
        if baseline.name not in used
    ]
    return found


def _history(
    label: str, results: list[RunResult], baseline: Baseline | None, margin_pct: float
) -> History:
    sittings = _sittings(results, baseline)
    history = History(label, sittings, margin_pct, noise_cv=run_to_run_noise(sittings))
    if baseline is not None:
        history.baseline = baseline.name
        history.baseline_median_images_per_s = statistics.median(
            run.steady_train_images_per_s for run in baseline.runs
        )
        history.baseline_drift = baseline.drift
    history.change_points = change_points(sittings, margin_pct)
    return history
