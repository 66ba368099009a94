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
# Per side. With 3 vs 3 the rank test cannot reach p < 0.05 at all (its smallest two-sided p
# is 0.10); 4 vs 4 can (0.029).
MIN_RUNS = 4
CONFIDENCE = 0.95
POWER = 0.8


@dataclass
class SpeedEffect:
    """B against A: the ratio of median throughputs with its bootstrap interval, a rank test,
    and a verdict that uses the margin as an equivalence band."""

    ratio: float  # median(b) / median(a): 0.86 is 14 % slower
    low: float  # CONFIDENCE bootstrap interval of the ratio
    high: float
    p_value: float  # two-sided Mann–Whitney U
    runs_a: int
    runs_b: int
    margin: float  # e.g. 0.05: changes within ±5 % count as no change
    verdict: str  # slower, faster, ok or inconclusive
    reason: str  # why, in words
    noise_cv: float  # pooled run-to-run coefficient of variation
    detectable: float  # the smallest slowdown these run counts flag with POWER
    runs_for: dict[float, int | None]  # slowdown -> runs per side to flag it (None: not possible)

    def describe(self) -> str:
        """e.g. 'slower −14.0 % [−18.2, −9.1] (5 vs 5 runs, p = 0.004)'."""
        runs = f"{self.runs_a} vs {self.runs_b} runs"
        if math.isnan(self.low):
            text = f"{self.verdict} {100 * (self.ratio - 1):+.1f} % ({runs})"
        else:
            pct = [100 * (value - 1) for value in (self.ratio, self.low, self.high)]
            text = f"{self.verdict} {pct[0]:+.1f} % [{pct[1]:+.1f}, {pct[2]:+.1f}] "
            text += f"({runs}, p = {self.p_value:.2g})"
        return text.replace("-", "−")


def _noise_cv(a: Sequence[float], b: Sequence[float]) -> float:
    """Pooled within-side coefficient of variation (each side around its own mean)."""
    cvs = [statistics.stdev(side) / statistics.fmean(side) for side in (a, b) if len(side) > 1]
    return statistics.fmean(cvs) if cvs else float("nan")


# A median of n normal samples varies about π/2 times as much as their mean (in variance).
MEDIAN_EFFICIENCY = math.pi / 2


def runs_needed(slowdown: float, margin: float, noise_cv: float) -> int | None:
    """Runs per side for the interval of a true `slowdown` (0.05 = 5 %) to clear the margin
    with POWER, by the normal approximation on the log ratio of medians; None when it cannot
    (the slowdown is within the margin, or the noise is unknown)."""
    from scipy.stats import norm

    if not (0 <= margin < slowdown < 1) or not math.isfinite(noise_cv):
        return None
    beyond = -math.log1p(-slowdown) + math.log1p(-margin)  # distance past the margin, in log
    z = norm.ppf(1 - (1 - CONFIDENCE) / 2) + norm.ppf(POWER)
    return max(MIN_RUNS, math.ceil(2 * MEDIAN_EFFICIENCY * (z * noise_cv / beyond) ** 2))


def detectable_slowdown(runs: int, margin: float, noise_cv: float) -> float:
    """The smallest slowdown that `runs` per side flag with POWER (inverse of runs_needed)."""
    from scipy.stats import norm

    z = norm.ppf(1 - (1 - CONFIDENCE) / 2) + norm.ppf(POWER)
    spread = z * noise_cv * math.sqrt(2 * MEDIAN_EFFICIENCY / runs)
    return 1 - math.exp(math.log1p(-margin) - spread)


def compare_speeds(
    a: Sequence[float], b: Sequence[float], margin: float, *, seed: int = 0
) -> SpeedEffect:
    """Is B slower or faster than A, beyond `margin`, given run-level replicates of each?

    slower/faster only when the whole interval lies beyond the margin; ok only when it lies
    within it; otherwise inconclusive, with the reason."""
    import numpy as np
    from scipy.stats import bootstrap, mannwhitneyu

    ratio = statistics.median(b) / statistics.median(a)
    noise = _noise_cv(a, b)
    runs = min(len(a), len(b))
    targets = sorted({target for target in (round(2 * margin, 4), 0.10) if target < 1})
    what_it_takes = (
        {target: runs_needed(target, margin, noise) for target in targets}
        if math.isfinite(noise)
        else {}
    )
    if runs < MIN_RUNS:
        return SpeedEffect(
            ratio, float("nan"), float("nan"), float("nan"), len(a), len(b), margin,
            INCONCLUSIVE, f"too few runs: {len(a)} vs {len(b)}, need at least {MIN_RUNS} each",
            noise, float("nan"), what_it_takes,
        )  # fmt: skip
    p_value = float(mannwhitneyu(b, a, alternative="two-sided").pvalue)
    interval = bootstrap(
        (np.asarray(a), np.asarray(b)),
        lambda x, y, axis: np.median(y, axis=axis) / np.median(x, axis=axis),
        vectorized=True,
        n_resamples=4000,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    low, high = float(interval.low), float(interval.high)
    significant = p_value < 1 - CONFIDENCE
    if high < 1 - margin and significant:
        verdict, reason = SLOWER, f"the whole interval is below −{100 * margin:g} %"
    elif low > 1 + margin and significant:
        verdict, reason = FASTER, f"the whole interval is above +{100 * margin:g} %"
    elif high < 1 - margin or low > 1 + margin:
        verdict = INCONCLUSIVE
        reason = f"the interval is beyond the margin but the rank test is not (p = {p_value:.2g})"
    elif 1 - margin <= low and high <= 1 + margin:
        verdict, reason = SAME, f"the whole interval is within ±{100 * margin:g} %"
    else:
        verdict = INCONCLUSIVE
        reason = (
            f"the interval crosses the ±{100 * margin:g} % margin: too much noise "
            f"({100 * noise:.1f} % run to run) for {runs} runs a side"
        )
    return SpeedEffect(
        ratio, low, high, p_value, len(a), len(b), margin, verdict, reason, noise,
        detectable_slowdown(runs, margin, noise), what_it_takes,
    )  # fmt: skip
