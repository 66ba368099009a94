"""Pure statistics over run-level figures.

What each speed gate guarantees (`slower`, exit 1 with --fail-on-regression):
- `ab` (bench.judge.sequential): at any stopping time and any noise level, `slower` at most
  5 % of the time when B is not slower, and at most 10 % at any true slowdown of half the
  margin or less (the confidence sequence must lie wholly beyond half the margin); between
  half the margin and the margin it is not bounded. `ok` at most 10 % of the time at a true
  slowdown of twice the margin or more.
- `compare` against a baseline (compare_to_baseline): one-sided 95 % bounds, so `slower` at
  most about 5 % of the time on identical code while the drift between sittings is no more
  than the drift allowed for (measured from 3 sittings, else partly assumed); beyond it false
  alarms follow the true drift (README: 12.8 % at a true 15 % against an assumed 8 %). The
  margin there is a check on the estimate: a true slowdown inside it may be called `slower`
  more often than 5 %.
Simulated operating characteristics of both: README, written by scripts/evidence.py.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bench.config.settings import ASSUMED_DOF, ASSUMED_DRIFT, ASSUMED_NOISE_CV, plural

if TYPE_CHECKING:
    from bench.storage.results import RunResult


@dataclass
class Spread:
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), std, min(values), max(values))


@dataclass
class RunsSpread:
    """Replicates of one configuration, as `run --repeat` and `ab` summarise them."""

    runs: int
    median_images_per_s: float
    min_images_per_s: float
    max_images_per_s: float
    noise_cv: float  # run to run, std ÷ mean; 0 for one run
    accuracy_pct: Spread
    digests: int  # distinct weights digests
    disturbed: int  # runs the machine was busy during

    @classmethod
    def of(cls, results: Sequence[RunResult]) -> RunsSpread:
        rates = [result.summary.steady_train_images_per_s for result in results]
        spread = Spread.of(rates)
        return cls(
            runs=len(results),
            median_images_per_s=statistics.median(rates),
            min_images_per_s=spread.min,
            max_images_per_s=spread.max,
            noise_cv=spread.std / spread.mean,
            accuracy_pct=Spread.of([result.summary.final_test_accuracy_pct for result in results]),
            digests=len({result.weights_sha256 for result in results}),
            disturbed=sum(
                bool(result.disturbance and result.disturbance.disturbed) for result in results
            ),
        )


def spreads_by_device_and_loader(
    results: Sequence[RunResult],
) -> dict[tuple[str, str], RunsSpread]:
    """`run --repeat`: each device × loader's replicates summarised, in order of appearance."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.config.device, result.config.loader), []).append(result)
    return {key: RunsSpread.of(group) for key, group in groups.items()}


class Verdict(StrEnum):
    """Every verdict word the harness prints, stores and gates on."""

    OK = "ok"
    SLOWER = "slower"
    FASTER = "faster"
    INCONCLUSIVE = "inconclusive"
    LESS_ACCURATE = "less accurate"
    MORE_ACCURATE = "more accurate"
    DIFFERENT_WEIGHTS = "different weights"
    NO_BASELINE = "no baseline"
    NO_MACHINE_BASELINE = "no baseline for this machine"
    NO_SEED = "seed not in baseline"
    NOT_BITWISE = "not bitwise comparable"  # the digest is not judged; accuracy decides


# What a regression gate fails on: evidence of a regression, never the want of evidence.
REGRESSIONS = (Verdict.SLOWER, Verdict.LESS_ACCURATE, Verdict.DIFFERENT_WEIGHTS)
# One-sided bounds at this level: the printed interval is the two-sided 90 % one.
CONFIDENCE = 0.95
POWER = 0.8
NAN = float("nan")
# Against a baseline whose drift between sittings was measured in fewer than this many
# sittings, the drift is an assumed figure pooled with what was measured.
SITTINGS_FOR_DRIFT = 3


@dataclass(kw_only=True)
class SpeedEffect:
    """B against A (or new runs against a baseline): the ratio of throughputs with its
    interval, and a verdict that needs evidence of a change and a change beyond the margin."""

    ratio: float  # B / A, geometric means: 0.86 is 14 % slower
    low: float  # the interval of the ratio (NaN: none)
    high: float
    verdict: Verdict
    reason: str  # why, in words
    runs_a: int  # pairs, for a sequential A/B
    runs_b: int
    # e.g. 0.05: 'slower' needs an estimate beyond −5 % (and, for `ab`, an interval beyond
    # −2.5 %: bench.judge.sequential); what that guarantees is each rule's own.
    margin: float
    noise_cv: float  # run-to-run coefficient of variation (NaN: unknown)
    interval: str  # what kind of interval low..high is
    evidence: float = NAN  # the sequential test's e-value for a slowdown
    drift: float = 0.0  # between-sitting drift (CV) the interval allows for; 0: same sitting
    drift_assumed: bool = False  # that drift is partly an assumption (fewer than 3 sittings)
    against_baseline: bool = False  # A is a baseline of fixed runs, B the new runs
    detectable: float = NAN  # the slowdown flagged with POWER at these run counts
    # The geometric means of A's and B's training images/s whose ratio is `ratio`; kept by
    # compare_to_baseline (for `compare --plot`), NaN elsewhere.
    a_images_per_s: float = NAN
    b_images_per_s: float = NAN

    @classmethod
    def of_logs(cls, estimate: float, low: float, high: float, **figures: Any) -> SpeedEffect:
        """From a mean log ratio and the logs of its interval's ends."""
        return cls(ratio=math.exp(estimate), low=math.exp(low), high=math.exp(high), **figures)

    @property
    def could_miss(self) -> float:
        """The largest slowdown the interval leaves open (0 when it rules out any)."""
        return 0.0 if math.isnan(self.low) or self.low >= 1 else 1 - self.low

    def describe(self) -> str:
        """e.g. 'slower −14.0 % [−18.2, −9.1] (5 vs 5 runs, e = 31)'."""
        if self.against_baseline:
            details = [f"{self.runs_b} vs {plural(self.runs_a, 'baseline run')}"]
        else:
            details = [plural(self.runs_a, "pair")]
        if not math.isnan(self.evidence):
            details.append(f"e = {self.evidence:.3g}")
        if self.drift:
            details.append(f"±{100 * self.drift:.1f} % drift")
        text = f"{self.verdict} {100 * (self.ratio - 1):+.1f} %"
        if self.low > 0 and math.isfinite(self.high):
            text += f" [{100 * (self.low - 1):+.1f}, {100 * (self.high - 1):+.1f}]"
        elif not math.isnan(self.low):
            text += " [no interval yet]"
        return f"{text} ({', '.join(details)})".replace("-", "−")


def _one_sided(
    estimate: float,
    low: float,
    high: float,
    bounds: tuple[float, float],
    names: tuple[Verdict, Verdict],
    amount: str,
) -> tuple[Verdict, str]:
    """The gate's rule on an estimate with one-sided bounds (`low`, `high`) and the margin as
    (`bounds`): worse on evidence of a change (the whole interval below none) that is beyond
    the margin; better likewise; ok when the interval rules out a change beyond the margin
    (or shows a real one within it); otherwise inconclusive."""
    worse, better = names
    below, above = bounds
    if high < 0 and estimate < below:
        return worse, f"the whole interval is below none and the estimate beyond −{amount}"
    if low > 0 and estimate > above:
        return better, f"the whole interval is above none and the estimate beyond +{amount}"
    if low >= below:
        return Verdict.OK, f"the interval rules out a change worse than −{amount}"
    if high < 0:
        return Verdict.OK, f"a real change, smaller than the −{amount} margin"
    return Verdict.INCONCLUSIVE, f"the interval reaches below −{amount}"


def _quantile(dof: float) -> float:
    from scipy.stats import norm, t

    return float(t.ppf(CONFIDENCE, dof) if math.isfinite(dof) else norm.ppf(CONFIDENCE))


def pooled_drift(measured: float | None, sittings: int, assumed: float) -> tuple[float, float]:
    """The drift between sittings to allow for, and its degrees of freedom: the measured one
    from SITTINGS_FOR_DRIFT sittings on (sittings − 1); below that, the assumed figure pooled
    with the measured one by degrees of freedom (ASSUMED_DOF for the assumption, one for a
    measurement of two sittings)."""
    if measured is not None and sittings >= SITTINGS_FOR_DRIFT:
        return measured, sittings - 1
    measured_dof = sittings - 1 if measured is not None else 0
    variance = ASSUMED_DOF * assumed**2 + measured_dof * (measured or 0.0) ** 2
    dof = ASSUMED_DOF + measured_dof
    return math.sqrt(variance / dof), dof


def _log_spread(
    runs: Sequence[float], baseline_noise: float | None, baseline_dof: int
) -> tuple[float, float, str]:
    """The run-to-run standard deviation of log throughput, its degrees of freedom and where
    it came from: the baseline's within-sitting noise pooled with the new runs' own; the
    assumed noise when neither has a spread."""
    dof, variance, sources = 0, 0.0, []
    if baseline_noise is not None and baseline_dof > 0:
        dof, variance = baseline_dof, baseline_dof * baseline_noise**2
        sources.append("the baseline's")
    if len(runs) > 1:
        own = statistics.stdev(math.log(rate) for rate in runs)
        dof, variance = dof + len(runs) - 1, variance + (len(runs) - 1) * own**2
        sources.append("these runs'")
    if not dof:
        return ASSUMED_NOISE_CV, ASSUMED_DOF, "assumed"
    return math.sqrt(variance / dof), dof, " and ".join(sources)


def compare_to_baseline(
    baseline: Sequence[float],
    runs: Sequence[float],
    margin: float,
    *,
    noise_cv: float | None,
    drift: float | None,
    sittings: int,
    assumed_drift: float = ASSUMED_DRIFT,
    same_sitting: bool = False,
) -> SpeedEffect:
    """New runs against a baseline's, one-sided: the ratio of geometric means (the mean of log
    throughputs), with bounds from the run-to-run noise and, unless the runs were taken in one
    of the baseline's sittings, the drift between sittings (a slower machine today must not
    read as slower code). `same_sitting`: `baseline` holds the runs of the one sitting the new
    runs were taken in, so no drift separates them. The baseline's within-sitting `noise_cv`
    has len(baseline) − sittings degrees of freedom."""
    mean_log = statistics.fmean(math.log(rate) for rate in runs)
    base_log = statistics.fmean(math.log(rate) for rate in baseline)
    estimate = mean_log - base_log
    noise, noise_dof, source = _log_spread(runs, noise_cv, len(baseline) - sittings)
    spread, drift_dof = (0.0, 1) if same_sitting else pooled_drift(drift, sittings, assumed_drift)
    noise_share = noise**2 * (1 / len(runs) + 1 / len(baseline))
    drift_share = spread**2 * (1 + 1 / sittings)  # the new sitting's and the baseline mean's
    se = math.sqrt(noise_share + drift_share)
    # Welch–Satterthwaite: the bounds are as uncertain as their least-known part makes them.
    dof = se**4 / (noise_share**2 / noise_dof + drift_share**2 / drift_dof) if se else math.inf
    quantile = _quantile(dof)
    low, high = estimate - quantile * se, estimate + quantile * se
    bounds = (math.log1p(-margin), math.log1p(margin))
    verdict, reason = _one_sided(
        estimate, low, high, bounds, (Verdict.SLOWER, Verdict.FASTER), f"{100 * margin:g} %"
    )
    assumed = not same_sitting and (drift is None or sittings < SITTINGS_FOR_DRIFT)
    drift_words = (
        "none: the runs are in the baseline's sitting"
        if same_sitting
        else f"±{100 * spread:.1f} %" + (" (partly assumed)" if assumed else "")
    )
    reason += (
        f"; {100 * noise:.1f} % run-to-run noise ({source}), drift between sittings {drift_words}"
    )
    if assumed and drift is not None and drift > assumed_drift:
        reason += (
            f"; the baseline's own {sittings} sittings measured ±{100 * drift:.1f} %, more than "
            f"the ±{100 * assumed_drift:.1f} % assumed: false alarms follow the true drift "
            f"(README), so consider --assumed-drift {100 * drift:.0f}"
        )
    beyond = max(quantile * se, -bounds[0]) + _z_power() * se
    return SpeedEffect.of_logs(
        estimate,
        low,
        high,
        verdict=verdict,
        reason=reason,
        runs_a=len(baseline),
        runs_b=len(runs),
        margin=margin,
        noise_cv=noise,
        interval="90 % (one-sided 95 % bounds)",
        drift=spread,
        drift_assumed=assumed,
        against_baseline=True,
        detectable=-math.expm1(-beyond),
        a_images_per_s=math.exp(base_log),
        b_images_per_s=math.exp(mean_log),
    )


def simulate_against_baseline(
    slowdown: float,
    true_drift: float,
    *,
    margin: float,
    comparisons: int,
    noise_cv: float = ASSUMED_NOISE_CV,
    baseline_runs: int = 5,
    runs: int = 5,
    sittings: int = 1,
    assumed_drift: float = ASSUMED_DRIFT,
    seed: int = 0,
) -> dict[Verdict, float]:
    """The share of each speed verdict of `compare` on simulated comparisons against a
    baseline: every sitting — each of the baseline's `sittings` and the new runs' own — has
    its own level of the machine (normal, `true_drift` on the log scale), each run varies
    about its sitting's level by `noise_cv`, and the new runs are `slowdown` slower. The
    baseline's noise and drift are measured from its runs as `baseline save` measures them."""
    import numpy as np

    from bench.storage.baselines import spread_of

    rng = np.random.default_rng(seed)
    labels = [sitting for sitting in range(sittings) for _ in range(baseline_runs)]
    counts: dict[Verdict, int] = {}
    for _ in range(comparisons):
        levels = rng.normal(0.0, true_drift, sittings + 1)
        baseline = np.exp(levels[labels] + rng.normal(0.0, noise_cv, len(labels)))
        new = np.exp(levels[-1] + math.log1p(-slowdown) + rng.normal(0.0, noise_cv, runs))
        noise, drift = spread_of(list(baseline), labels)
        verdict = compare_to_baseline(
            list(baseline), list(new), margin, noise_cv=noise, drift=drift, sittings=sittings,
            assumed_drift=assumed_drift,
        ).verdict  # fmt: skip
        counts[verdict] = counts.get(verdict, 0) + 1
    return {verdict: count / comparisons for verdict, count in counts.items()}


def _z_power() -> float:
    from scipy.stats import norm

    return float(norm.ppf(POWER))


@dataclass(kw_only=True)
class AccuracyEffect:
    """B against A over seeds: the difference of mean test accuracies with its interval."""

    difference: float  # mean(b) − mean(a), in points
    low: float  # one-sided 95 % bounds (NaN: too few seeds)
    high: float
    seeds_a: int
    seeds_b: int
    margin: float  # points: a loss within it is not a regression
    verdict: Verdict
    reason: str

    def describe(self) -> str:
        text = f"{self.verdict} {self.difference:+.2f} points"
        if not math.isnan(self.low):
            text += f" [{self.low:+.2f}, {self.high:+.2f}]"
        seeds = f"{self.seeds_a} vs {plural(self.seeds_b, 'seed')}"
        return f"{text} ({seeds})".replace("-", "−")


MIN_SEEDS = 2  # per side, for a spread of accuracy over seeds


def compare_accuracies(a: Sequence[float], b: Sequence[float], margin: float) -> AccuracyEffect:
    """Is B less or more accurate than A beyond `margin` points, given one accuracy per seed?
    Welch's interval of the difference of means, by the speed rule."""
    difference = statistics.fmean(b) - statistics.fmean(a)
    if min(len(a), len(b)) < MIN_SEEDS:
        low = high = NAN
        verdict = Verdict.INCONCLUSIVE
        reason = f"too few seeds: {len(a)} vs {len(b)}, need at least {MIN_SEEDS} each"
    else:
        low, high = _welch_bounds(a, b)
        verdict, reason = _one_sided(
            difference, low, high, (-margin, margin),
            (Verdict.LESS_ACCURATE, Verdict.MORE_ACCURATE), f"{margin:g} points",
        )  # fmt: skip
    return AccuracyEffect(
        difference=difference, low=low, high=high, seeds_a=len(a), seeds_b=len(b),
        margin=margin, verdict=verdict, reason=reason,
    )  # fmt: skip


def _welch_bounds(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """One-sided CONFIDENCE bounds of mean(b) − mean(a), Welch's (unequal spreads); exact
    when neither side varies."""
    difference = statistics.fmean(b) - statistics.fmean(a)
    shares = [statistics.variance(side) / len(side) for side in (a, b)]
    se = math.sqrt(sum(shares))
    if se == 0:
        return difference, difference
    dof = se**4 / sum(
        share**2 / (len(side) - 1) for share, side in zip(shares, (a, b), strict=True)
    )
    return difference - _quantile(dof) * se, difference + _quantile(dof) * se


def speedup(a: Sequence[float], b: Sequence[float]) -> SpeedEffect:
    """Group B's throughput over group A's, e.g. a GPU's over a CPU's: the ratio of geometric
    means with Welch's bounds on the logs (each device with its own spread), `faster` or
    `slower` on evidence of any difference; no interval with fewer than 2 runs a side."""
    logs = [[math.log(rate) for rate in side] for side in (a, b)]
    estimate = statistics.fmean(logs[1]) - statistics.fmean(logs[0])
    if min(len(a), len(b)) < 2:
        low = high = NAN
        verdict, reason = Verdict.INCONCLUSIVE, "fewer than 2 runs a side: no interval"
    else:
        low, high = _welch_bounds(*logs)
        verdict, reason = _one_sided(
            estimate, low, high, (0.0, 0.0), (Verdict.SLOWER, Verdict.FASTER), "0 %"
        )
    return SpeedEffect.of_logs(
        estimate,
        low,
        high,
        verdict=verdict,
        reason=reason,
        runs_a=len(a),
        runs_b=len(b),
        margin=0.0,
        noise_cv=NAN,
        interval="90 % (one-sided 95 % bounds, Welch)",
    )
