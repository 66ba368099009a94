"""History: the training throughput of one experiment × implementation × machine over its
sittings (commits, torch versions, days), and the change points in it.

Change points are found as asv and Otava find them, on one value per sitting (the median of its
runs' log throughput) with the noise taken from the series itself: the sittings' scatter about
their levels, drift between sittings included, which a step must stand out from (a t test
allowing for the search, bench.judge.steps). Within a sitting the code and torch are the same,
so a change always falls between sittings. Like Otava's minimum magnitude, a change is kept only
when it is also beyond the speed margin: a step within the margin is not a change that matters
here.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.judge.compare import run_label
from bench.judge.verdicts import find_baseline, rate_as
from bench.storage.baselines import Baseline, sittings_of
from bench.storage.experiment import Identity, identity_of
from bench.storage.results import YEARS, RunResult


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
    first_sitting: int  # the index of the sitting that starts the new level
    last_run_before: HistoryRun
    first_run_after: HistoryRun
    # The level since the previous change: the geometric mean of its sittings' medians.
    before_images_per_s: float
    after_images_per_s: float  # the level up to the next change

    @property
    def change_pct(self) -> float:
        return 100 * (self.after_images_per_s / self.before_images_per_s - 1)

    @property
    def code_changed(self) -> bool:
        """Whether the commit or torch changed where the level did (an unrecorded commit may
        have)."""
        before, after = self.last_run_before, self.first_run_after
        return before.torch != after.torch or before.commit != after.commit or not before.commit

    @property
    def commits(self) -> str:
        """Where it happened: 'between a1b2c3d and d4e5f6a', or at one commit, where the
        machine changed and not the code."""
        before, after = self.last_run_before, self.first_run_after
        torch = f", torch {before.torch} → {after.torch}" if before.torch != after.torch else ""
        if before.commit is None and after.commit is None:
            return f"between sittings whose commit was not recorded{torch}"
        if not self.code_changed:
            return f"at {_short(before.commit)} throughout: the machine changed, not the code"
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
    noise_cv: float | None = None  # the run-to-run noise within sittings (log rate)
    drift_cv: float | None = None  # the sittings' scatter about their levels beyond it
    why_not_judged: str | None = None  # why no change could be looked for

    @property
    def runs(self) -> list[HistoryRun]:
        return [run for sitting in self.sittings for run in sitting.runs]


def _started(run_id: str, fallback: str) -> datetime:
    """When a baseline's run started: its id's leading UTC time where it has one within the
    years a result may have, else `fallback` (ISO: the baseline's time)."""
    try:
        started = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromisoformat(fallback)
    return started if started.year in YEARS else datetime.fromisoformat(fallback)


def _from_result(result: RunResult, estimator: str | None) -> HistoryRun:
    """The run, its throughput taken by `estimator` (the baseline's) where it can be."""
    rate = rate_as(result, estimator) if estimator else None
    return HistoryRun(
        run_id=result.run_id,
        started_utc=datetime.fromisoformat(result.created_utc),  # as its sitting was found
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
    """The standard deviation of log throughput within sittings (pooled); None without two
    degrees of freedom (sittings of one run each cannot tell run noise from drift)."""
    logs = [[math.log(run.train_images_per_s) for run in s.runs] for s in sittings]
    within = [value - statistics.fmean(side) for side in logs if len(side) > 1 for value in side]
    degrees = sum(len(side) - 1 for side in logs if len(side) > 1)
    if degrees < 2:
        return None
    return math.sqrt(sum(residual * residual for residual in within) / degrees)


def change_points(
    sittings: list[Sitting], margin_pct: float
) -> tuple[list[ChangePoint], float | None, str | None]:
    """Changes of level between sittings beyond what the drift between sittings explains and
    beyond the margin (bench.judge.steps); the drift it allowed for, and why nothing could be
    judged where nothing could."""
    import numpy as np

    from bench.judge.steps import find_steps

    summaries = np.log([sitting.median_images_per_s for sitting in sittings])
    runs_per_sitting = statistics.median(len(sitting.runs) for sitting in sittings)
    steps = find_steps(summaries, run_to_run_noise(sittings), runs_per_sitting, margin_pct / 100)
    found = [
        ChangePoint(
            start,
            sittings[start - 1].runs[-1],
            sittings[start].runs[0],
            math.exp(before),
            math.exp(after),
        )
        for start, before, after in zip(steps.starts, steps.levels, steps.levels[1:], strict=False)
    ]
    return found, steps.drift, steps.why_not


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
    if sittings:
        found = change_points(sittings, margin_pct)
        history.change_points, history.drift_cv, history.why_not_judged = found
    return history


@dataclass
class LeftOut:
    """What a view of the latest sittings left out: runs in how many earlier sittings."""

    runs: int = 0
    sittings: int = 0

    def describe(self) -> str | None:
        """e.g. '1,994 runs in 664 earlier sittings left out (--all shows every run)'."""
        if not self.runs:
            return None
        sittings = f"{self.sittings:,} earlier sitting{'' if self.sittings == 1 else 's'}"
        return f"{self.runs:,} run{'' if self.runs == 1 else 's'} in {sittings} left out"


def latest_sittings(
    results: list[tuple[Path, RunResult]],
) -> tuple[list[tuple[Path, RunResult]], LeftOut]:
    """The runs of each experiment × implementation × machine's latest sitting (as
    bench.storage.baselines.sittings_of numbers them), in the order given; and what that left
    out."""
    by_identity: dict[Identity, list[int]] = defaultdict(list)
    for index, (_, result) in enumerate(results):
        by_identity[identity_of(result)].append(index)
    kept: set[int] = set()
    left_out = LeftOut()
    for indices in by_identity.values():
        numbers = sittings_of([results[index][1] for index in indices])
        last = max(numbers)
        kept.update(index for index, number in zip(indices, numbers, strict=True) if number == last)
        left_out.runs += sum(number != last for number in numbers)
        left_out.sittings += last
    return [pair for index, pair in enumerate(results) if index in kept], left_out
