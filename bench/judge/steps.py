"""Steps in a history that drifts: change points on the sittings' summaries, not on the runs.

A run's log throughput is its code's level, plus its sitting's level (the machine that day:
neighbours, clocks, host; it moves by several percent with no code change), plus run noise.
So the unit is the sitting, as it is for asv (one value per commit) and Otava (E-divisive on
per-commit values): each sitting is summarised by the median of its runs' log rates, and what
the summaries scatter by about their level — drift between sittings and the run noise left in
a median — is the noise a step must stand out from.

The search is binary segmentation: the split of a segment that explains most of its spread
(found from cumulative sums, linear in the sittings), kept while a t test on the sittings either
side, with the scatter of all sittings about their levels as its variance, beats a critical
value that allows for the search over every split; each split gives one more change to search
around, so the search costs n log n in the sittings (n · changes at worst). Then, as Otava's
minimum magnitude, a change is reported only beyond the margin: the smallest one within it is
dropped and its neighbours' levels measured anew, until every change left is beyond it.

`simulate` runs the finder on seeded histories of that two-level model; scripts/history.py oc
prints its operating characteristics and tests/test_history.py asserts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit

ALPHA = 0.04  # the chance, over a history of one level, of finding a change in it
MIN_SITTINGS = 3  # two to tell levels apart and one more to measure the scatter about them
MIN_SPREAD = 1e-4  # a floor (in log rate): identical figures would make every step a change


@dataclass(frozen=True)
class Steps:
    """Where the levels of a series of sitting summaries change, and the noise they were
    judged by."""

    starts: list[int]  # the index of each sitting that begins a new level, ascending
    levels: list[float]  # the mean summary of each level, in log rate: len(starts) + 1
    spread: float | None  # sd of a sitting's summary about its level (log rate)
    drift: float | None  # the part of it between sittings: what the run noise does not explain
    why_not: str | None = None  # why nothing could be judged (too few sittings)


def critical_value(sittings: int, dof: int) -> float:
    """|t| a split must beat: a two-sided t test at ALPHA over the effective number of splits
    a search over `sittings` tries (neighbouring splits are nearly the same test, so it grows
    with the logarithm of their number rather than with the number)."""
    tries = 1 + math.log(max(sittings - 1, 1))
    return float(stdtrit(dof, 1 - ALPHA / (2 * tries)))


def _splits(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each split of each row (the last axis) after its first, second, … value: the mean
    before it less the mean after, and the squared deviation the split removes."""
    count = rows.shape[-1]
    left_counts = np.arange(1, count)
    left_sums = np.cumsum(rows, axis=-1)[..., :-1]
    right_sums = rows.sum(axis=-1, keepdims=True) - left_sums
    difference = left_sums / left_counts - right_sums / (count - left_counts)
    return difference, left_counts * (count - left_counts) / count * difference**2


def _best_split(summaries: np.ndarray, start: int, end: int) -> tuple[int, float]:
    """The split of summaries[start:end] that removes most squared deviation, and how much."""
    _, gains = _splits(summaries[start:end])
    best = int(np.argmax(gains))
    return start + best + 1, float(gains[best])


def _squares(summaries: np.ndarray, edges: list[int]) -> float:
    """The summaries' squared deviations from their segments' means."""
    return sum(
        float(((part - part.mean()) ** 2).sum())
        for part in (summaries[a:b] for a, b in zip(edges, edges[1:], strict=False))
    )


def find_steps(
    summaries: np.ndarray, run_spread: float | None, runs_per_sitting: float, margin: float
) -> Steps:
    """The changes of level in `summaries` (each sitting's median log rate, in time order)
    beyond what their scatter explains and beyond `margin` (a fraction). `run_spread` is the
    noise of one run within a sitting (log rate, None when unknown): a sitting's summary
    scatters by at least run_spread / √runs_per_sitting even where the sittings agree."""
    count = len(summaries)
    if count < MIN_SITTINGS:
        why = (
            "one sitting: no change between sittings can be placed"
            if count == 1
            else f"{count} sittings: at least {MIN_SITTINGS} are needed to tell a change from "
            "the drift between sittings"
        )
        return Steps([], [float(np.mean(summaries))] if count else [], None, None, why)
    floor = max((run_spread or 0.0) ** 2 / runs_per_sitting, MIN_SPREAD**2)
    starts: list[int] = []
    while True:
        edges = [0, *starts, count]
        dof = count - len(edges)  # one level more than now
        if dof < 1:
            break
        candidates = [
            (*_best_split(summaries, a, b), a, b)
            for a, b in zip(edges, edges[1:], strict=False)
            if b - a >= 2
        ]
        if not candidates:
            break
        split, gain, start, end = max(candidates, key=lambda candidate: candidate[1])
        variance = max((_squares(summaries, edges) - gain) / dof, floor)
        left, right = summaries[start:split], summaries[split:end]
        t = abs(left.mean() - right.mean()) / math.sqrt(variance * (1 / len(left) + 1 / len(right)))
        if t <= critical_value(end - start, dof):
            break
        starts = sorted([*starts, split])
    variance = max(_squares(summaries, [0, *starts, count]) / (count - len(starts) - 1), floor)
    starts = _beyond_margin(summaries, starts, margin)
    edges = [0, *starts, count]
    levels = [float(np.mean(summaries[a:b])) for a, b in zip(edges, edges[1:], strict=False)]
    drift = math.sqrt(max(variance - (run_spread or 0.0) ** 2 / runs_per_sitting, 0.0))
    return Steps(starts, levels, math.sqrt(variance), drift)


def _beyond_margin(summaries: np.ndarray, starts: list[int], margin: float) -> list[int]:
    """`starts` less the changes within the margin, the smallest dropped first, each change's
    size measured between its neighbours' levels (means of the summaries, as the t test
    measures them)."""
    starts = list(starts)
    while starts:
        edges = [0, *starts, len(summaries)]
        means = [np.mean(summaries[a:b]) for a, b in zip(edges, edges[1:], strict=False)]
        sizes = [
            abs(math.expm1(after - before)) for before, after in zip(means, means[1:], strict=False)
        ]
        smallest = min(range(len(sizes)), key=sizes.__getitem__)
        if sizes[smallest] > margin:
            break
        del starts[smallest]
    return starts


@dataclass(frozen=True)
class Operating:
    """How often the finder, on simulated histories of one kind, found what."""

    histories: int
    any_change: float  # share of histories with at least one change reported
    mean_changes: float
    found_in_place: float  # share with a change within one sitting of the true step


def _simulated(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    *,
    drift: float,
    run_noise: float,
    step: float,
    where: int,
) -> np.ndarray:
    """Log rates of `shape` (histories × sittings × runs) from the two-level model: each
    sitting's level drawn with sd `drift`, each run with sd `run_noise` about it, and from
    sitting `where` on everything `step` slower (0: none)."""
    histories, sittings, runs = shape
    code = np.where(np.arange(sittings) >= where, math.log1p(-step), 0.0)
    levels = code + rng.normal(0.0, drift, (histories, sittings))
    return levels[:, :, None] + rng.normal(0.0, run_noise, shape)


def simulate(
    sittings: int,
    runs: int,
    *,
    drift: float,
    run_noise: float,
    step: float = 0.0,
    step_at: float = 0.5,
    margin: float,
    histories: int,
    seed: int = 0,
) -> Operating:
    """The finder on `histories` seeded histories of the two-level model (_simulated), the step
    at sitting round(step_at · sittings). Run noise and runs per sitting are given to the
    finder as history.py gives them: pooled within sittings."""
    rng = np.random.default_rng(seed)
    where = round(step_at * sittings)
    rates = _simulated(
        rng, (histories, sittings, runs), drift=drift, run_noise=run_noise, step=step, where=where
    )
    summaries = np.median(rates, axis=2)
    within = _pooled_within(rates)
    found = [find_steps(summaries[h], within[h], runs, margin).starts for h in range(histories)]
    return Operating(
        histories=histories,
        any_change=sum(bool(starts) for starts in found) / histories,
        mean_changes=sum(map(len, found)) / histories,
        found_in_place=(
            sum(any(abs(start - where) <= 1 for start in starts) for starts in found) / histories
            if step
            else 0.0
        ),
    )


def _pooled_within(rates: np.ndarray) -> list[float | None]:
    """Per history (rates: histories × sittings × runs), the run noise pooled within sittings."""
    if rates.shape[2] < 2:
        return [None] * rates.shape[0]
    return list(np.sqrt(rates.var(axis=2, ddof=1).mean(axis=1)))


def _one_step_scan(
    summaries: np.ndarray, spread: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per history (a row of sitting summaries), the likelihood ratio test for one step at an
    unknown sitting: its statistic (the squared t of the best split, with the known `spread`
    of a summary, or, None, the scatter about the two levels), where it splits and the
    step's size (a fraction)."""
    count = summaries.shape[1]
    difference, gains = _splits(summaries)
    if spread is None:
        squares = ((summaries - summaries.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        variances = (squares[:, None] - gains) / (count - 2)
    else:
        variances = np.full_like(gains, spread**2)
    statistics = gains / variances
    best = statistics.argmax(axis=1)
    rows = np.arange(len(summaries))
    sizes = np.abs(np.expm1(difference[rows, best]))
    return statistics[rows, best], best + 1, sizes


def best_found_in_place(
    sittings: int,
    runs: int,
    *,
    drift: float,
    run_noise: float,
    step: float,
    step_at: float,
    margin: float,
    histories: int,
    drift_known: bool,
    false_changes: float = 0.10,
    seed: int = 0,
) -> float:
    """A reference for simulate's found_in_place: how often the likelihood ratio test for one
    step (_one_step_scan, the margin applied as the finder applies it), set by simulation to
    give a false change in exactly `false_changes` of histories of the same drift without the
    step, places the step within one sitting. The finder must also find several steps, and
    gets the drift from the series alone; this test knows there is at most one step and, with
    `drift_known`, the exact scatter of a sitting's summary."""
    rng = np.random.default_rng(seed)
    where = round(step_at * sittings)

    def summaries(size: float) -> np.ndarray:
        rates = _simulated(
            rng, (histories, sittings, runs), drift=drift, run_noise=run_noise, step=size,
            where=where,
        )  # fmt: skip
        return np.median(rates, axis=2)

    same = summaries(0.0)
    spread = float(same.std()) if drift_known else None
    statistic, _, size = _one_step_scan(same, spread)
    critical = np.quantile(np.where(size > margin, statistic, 0.0), 1 - false_changes)
    statistic, split, size = _one_step_scan(summaries(step), spread)
    placed = (statistic > critical) & (size > margin) & (np.abs(split - where) <= 1)
    return float(placed.mean())
