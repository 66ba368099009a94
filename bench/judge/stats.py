"""Pure statistics over run-level figures."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


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


SLOWER, FASTER, SAME, INCONCLUSIVE = "slower", "faster", "ok", "inconclusive"
LESS_ACCURATE, MORE_ACCURATE = "less accurate", "more accurate"
# Per side. With 3 vs 3 the rank test cannot reach p < 0.05 at all (its smallest two-sided p
# is 0.10); 4 vs 4 can (0.029).
MIN_RUNS = 4
CONFIDENCE = 0.95
POWER = 0.8
NAN = float("nan")


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(level))


@dataclass
class SpeedEffect:
    """B against A: the ratio of median throughputs with its interval, a rank test, and a
    verdict that uses the margin as an equivalence band."""

    ratio: float  # median(b) / median(a): 0.86 is 14 % slower
    low: float  # CONFIDENCE interval of the ratio
    high: float
    p_value: float  # two-sided Mann–Whitney U; NaN where too few runs for one
    runs_a: int
    runs_b: int
    margin: float  # e.g. 0.05: changes within ±5 % count as no change
    verdict: str  # slower, faster, ok or inconclusive
    reason: str  # why, in words
    noise_cv: float  # run-to-run coefficient of variation within a sitting
    detectable: float  # the smallest slowdown these run counts flag with POWER
    runs_for: dict[float, int | None]  # slowdown -> runs per side to flag it (None: not possible)
    drift: float = 0.0  # between-sitting drift (CV) the interval was widened by; 0: interleaved
    against_baseline: bool = False  # A is a baseline of fixed runs, B the new runs

    def describe(self) -> str:
        """e.g. 'slower −14.0 % [−18.2, −9.1] (5 vs 5 runs, p = 0.004)'."""
        details = [f"{self.runs_a} vs {self.runs_b} runs"]
        if not math.isnan(self.p_value):
            details.append(f"p = {self.p_value:.2g}")
        if self.drift:
            details.append(f"widened by ±{100 * self.drift:.1f} % drift")
        text = f"{self.verdict} {100 * (self.ratio - 1):+.1f} %"
        if not math.isnan(self.low):
            text += f" [{100 * (self.low - 1):+.1f}, {100 * (self.high - 1):+.1f}]"
        return f"{text} ({', '.join(details)})".replace("-", "−")


def _noise_cv(a: Sequence[float], b: Sequence[float]) -> float:
    """Pooled within-side coefficient of variation (each side around its own mean)."""
    cvs = [statistics.stdev(side) / statistics.fmean(side) for side in (a, b) if len(side) > 1]
    return statistics.fmean(cvs) if cvs else NAN


# A median of n normal samples varies about π/2 times as much as their mean (in variance).
MEDIAN_EFFICIENCY = math.pi / 2


def _log_sd(runs: int, noise_cv: float, drift: float, fixed: int | None = None) -> float:
    """Standard deviation of the log ratio of two medians plus drift: `runs` runs a side, or
    `runs` new runs against a baseline of `fixed` runs."""
    per_run = MEDIAN_EFFICIENCY * noise_cv**2
    medians = 2 * per_run / runs if fixed is None else per_run * (1 / runs + 1 / fixed)
    return math.sqrt(medians + drift**2)


def runs_needed(
    slowdown: float, margin: float, noise_cv: float, drift: float = 0.0, fixed: int | None = None
) -> int | None:
    """Runs per side (against a baseline: new runs, the baseline's `fixed` count given) for the
    interval of a true `slowdown` (0.05 = 5 %) to clear the margin with POWER, by the normal
    approximation on the log ratio of medians; None when it cannot (the slowdown is within the
    margin, drift or the baseline's own runs alone blur it past the margin, or the noise is
    unknown)."""
    if not (0 <= margin < slowdown < 1) or not math.isfinite(noise_cv):
        return None
    beyond = -math.log1p(-slowdown) + math.log1p(-margin)  # distance past the margin, in log
    z = _z(1 - (1 - CONFIDENCE) / 2) + _z(POWER)
    per_run = MEDIAN_EFFICIENCY * noise_cv**2
    room = (beyond / z) ** 2 - drift**2 - (0 if fixed is None else per_run / fixed)
    if room <= 0:
        return None
    return max(MIN_RUNS, math.ceil((2 if fixed is None else 1) * per_run / room))


def detectable_slowdown(
    runs: int, margin: float, noise_cv: float, drift: float = 0.0, fixed: int | None = None
) -> float:
    """The smallest slowdown that `runs` per side (or against `fixed` baseline runs) flag with
    POWER (inverse of runs_needed)."""
    z = _z(1 - (1 - CONFIDENCE) / 2) + _z(POWER)
    return 1 - math.exp(math.log1p(-margin) - z * _log_sd(runs, noise_cv, drift, fixed))


def _verdict(
    low: float, high: float, margin: float, p_value: float, too_wide: str, names=(SLOWER, FASTER)
) -> tuple[str, str]:
    """The margin as an equivalence band: below or above it only when the whole interval is
    (and the rank test agrees, where there is one); within it only when the whole interval is;
    otherwise inconclusive, saying why (`too_wide`)."""
    worse, better = names
    significant = math.isnan(p_value) or p_value < 1 - CONFIDENCE
    beyond = high < -margin or low > margin
    if beyond and not significant:
        return INCONCLUSIVE, (
            f"the interval is beyond the margin but the rank test is not (p = {p_value:.2g})"
        )
    if high < -margin:
        return worse, f"the whole interval is below −{_amount(margin, names)}"
    if low > margin:
        return better, f"the whole interval is above +{_amount(margin, names)}"
    if -margin <= low and high <= margin:
        return SAME, f"the whole interval is within ±{_amount(margin, names)}"
    return INCONCLUSIVE, f"the interval crosses the ±{_amount(margin, names)} margin: {too_wide}"


def _amount(margin: float, names: tuple[str, str]) -> str:
    return f"{100 * margin:g} %" if names == (SLOWER, FASTER) else f"{margin:g} points"


def _what_it_takes(
    margin: float, noise: float, drift: float, fixed: int | None = None
) -> dict[float, int | None]:
    if not math.isfinite(noise):
        return {}
    targets = sorted({target for target in (round(2 * margin, 4), 0.10) if margin < target < 1})
    return {target: runs_needed(target, margin, noise, drift, fixed) for target in targets}


def _interval(
    a: Sequence[float], b: Sequence[float], statistic: str, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of median(b) / median(a) ("ratio of medians") or of
    mean(b) − mean(a) ("difference of means")."""
    import numpy as np
    from scipy.stats import bootstrap

    def ratio_of_medians(x, y, axis):
        return np.median(y, axis=axis) / np.median(x, axis=axis)

    def difference_of_means(x, y, axis):
        return np.mean(y, axis=axis) - np.mean(x, axis=axis)

    interval = bootstrap(
        (np.asarray(a), np.asarray(b)),
        ratio_of_medians if statistic == "ratio of medians" else difference_of_means,
        vectorized=True,
        n_resamples=4000,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return float(interval.low), float(interval.high)


def _rank_test(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(b, a, alternative="two-sided").pvalue)


def compare_speeds(
    a: Sequence[float], b: Sequence[float], margin: float, *, seed: int = 0
) -> SpeedEffect:
    """Is B slower or faster than A, beyond `margin`, given interleaved run-level replicates
    of each (so that drift hit both alike)?"""
    ratio = statistics.median(b) / statistics.median(a)
    noise = _noise_cv(a, b)
    runs = min(len(a), len(b))
    what_it_takes = _what_it_takes(margin, noise, 0.0)
    if runs < MIN_RUNS:
        return SpeedEffect(
            ratio, NAN, NAN, NAN, len(a), len(b), margin, INCONCLUSIVE,
            f"too few runs: {len(a)} vs {len(b)}, need at least {MIN_RUNS} each",
            noise, NAN, what_it_takes,
        )  # fmt: skip
    p_value = _rank_test(a, b)
    low, high = _interval(a, b, "ratio of medians", seed)
    verdict, reason = _verdict(
        low - 1, high - 1, margin, p_value,
        f"too much noise ({100 * noise:.1f} % run to run) for {runs} runs a side",
    )  # fmt: skip
    return SpeedEffect(
        ratio, low, high, p_value, len(a), len(b), margin, verdict, reason, noise,
        detectable_slowdown(runs, margin, noise), what_it_takes,
    )  # fmt: skip


def compare_to_baseline(
    baseline: Sequence[float],
    runs: Sequence[float],
    margin: float,
    *,
    noise_cv: float | None,
    drift: float | None,
    sittings: int,
    seed: int = 0,
) -> SpeedEffect:
    """Runs of this sitting against a baseline recorded in `sittings` others: as
    compare_speeds, with the interval widened by the between-sitting `drift` the baseline
    measured (a slower machine today must not read as slower code), counting the drift of the
    baseline's own median too. Fewer than MIN_RUNS runs are judged by the same rule on a
    prediction interval from the baseline's within-sitting `noise_cv` and the drift. Without a
    measured drift (a baseline of one sitting) nothing can be told apart."""
    ratio = statistics.median(runs) / statistics.median(baseline)
    noise = noise_cv if noise_cv is not None else NAN
    if drift is None:
        return SpeedEffect(
            ratio, NAN, NAN, NAN, len(baseline), len(runs), margin, INCONCLUSIVE,
            "the baseline was recorded in one sitting, so the drift between sittings is "
            "unknown: record it again in another sitting and save both as one baseline",
            noise, NAN, {}, against_baseline=True,
        )  # fmt: skip
    # Without a sitting of two runs the drift already holds all the run-to-run noise.
    known_noise = noise if math.isfinite(noise) else 0.0
    spread = drift * math.sqrt(1 + 1 / sittings)
    z = _z(1 - (1 - CONFIDENCE) / 2)
    if min(len(baseline), len(runs)) >= MIN_RUNS:
        p_value = _rank_test(baseline, runs)
        low, high = _interval(baseline, runs, "ratio of medians", seed)
        widen = [math.hypot(math.log(ratio / end), z * spread) for end in (low, high)]
        low, high = ratio * math.exp(-widen[0]), ratio * math.exp(widen[1])
    else:
        p_value = NAN
        half = z * _log_sd(len(runs), known_noise, spread, fixed=len(baseline))
        low, high = ratio * math.exp(-half), ratio * math.exp(half)
    verdict, reason = _verdict(
        low - 1, high - 1, margin, p_value,
        f"{100 * known_noise:.1f} % run-to-run noise and ±{100 * drift:.1f} % drift between "
        f"{sittings} sittings for {len(runs)} vs {len(baseline)} runs",
    )  # fmt: skip
    detectable = detectable_slowdown(len(runs), margin, noise, spread, len(baseline))
    return SpeedEffect(
        ratio, low, high, p_value, len(baseline), len(runs), margin, verdict, reason, noise,
        detectable, _what_it_takes(margin, noise, spread, len(baseline)), drift, True,
    )  # fmt: skip


@dataclass
class AccuracyEffect:
    """B against A over seeds: the difference of mean test accuracies with its interval."""

    difference: float  # mean(b) − mean(a), in points
    low: float
    high: float
    p_value: float
    seeds_a: int
    seeds_b: int
    margin: float  # points: differences within ±margin count as none
    verdict: str  # less accurate, more accurate, ok or inconclusive
    reason: str

    def describe(self) -> str:
        text = f"{self.verdict} {self.difference:+.2f} points"
        if not math.isnan(self.low):
            text += f" [{self.low:+.2f}, {self.high:+.2f}]"
        details = f"{self.seeds_a} vs {self.seeds_b} seeds"
        if not math.isnan(self.p_value):
            details += f", p = {self.p_value:.2g}"
        return f"{text} ({details})".replace("-", "−")


def compare_accuracies(
    a: Sequence[float], b: Sequence[float], margin: float, *, seed: int = 0
) -> AccuracyEffect:
    """Is B less or more accurate than A beyond `margin` points, given one accuracy per seed?
    The same rule as speed, on the difference of means (bootstrap interval, rank test)."""
    difference = statistics.fmean(b) - statistics.fmean(a)
    if min(len(a), len(b)) < MIN_RUNS:
        return AccuracyEffect(
            difference, NAN, NAN, NAN, len(a), len(b), margin, INCONCLUSIVE,
            f"too few seeds: {len(a)} vs {len(b)}, need at least {MIN_RUNS} each",
        )  # fmt: skip
    if len(set(a) | set(b)) == 1:  # every seed gave the same accuracy: nothing to resample
        low = high = difference
        p_value = 1.0
    else:
        p_value = _rank_test(a, b)
        low, high = _interval(a, b, "difference of means", seed)
    verdict, reason = _verdict(
        low, high, margin, p_value, "too few seeds for their spread",
        (LESS_ACCURATE, MORE_ACCURATE),
    )  # fmt: skip
    return AccuracyEffect(difference, low, high, p_value, len(a), len(b), margin, verdict, reason)
