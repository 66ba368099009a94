"""An anytime-valid test of B against A over interleaved pairs, for `ab`. Pure.

Each pair (one run of A, one of B, adjacent in time) gives one figure: the log ratio of B's
throughput to A's, so that slow drift of the machine, which hits both runs of a pair alike,
cancels. After every pair the test may stop; its error rates hold whenever it stops, however
often it looked (Ville's inequality), which a t-test repeated after every pair does not.

- Evidence of a slowdown: the safe t-test's e-value (Pérez-Ortiz, Lardy, de Heide, Grünwald,
  "E-statistics, group invariance and anytime-valid testing"): the likelihood ratio of the
  t statistic under a designed slowdown (non-central t) to its density under "no change"
  (central t). It does not depend on the unknown noise level, and under "B is not slower" it
  exceeds 1/α with probability at most α, at any stopping time.
- The design: mostly a slowdown of twice the margin, partly one of six times it, at
  DESIGN_NOISE_CV run-to-run noise (the upper end measured on the 2-core machine); the
  weighted mixture of their e-values is an e-value too. A larger true slowdown is found
  sooner; noise below the design makes it sooner too.
- The interval: a confidence sequence, the set of mean log ratios that the same e-values do
  not reject (each direction's, for the pairs shifted by the mean in question). Valid at the
  stopping time, unlike a t interval, and it excludes no change exactly when the test has
  evidence of one. It narrows to about the designed slowdown's half, not to nothing: it is
  built to decide, not to measure to the last percent.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from bench.judge.stats import NAN, SpeedEffect, Verdict

ALPHA = 0.05  # false "slower" (identical variants) at most this often, whenever it stops
MIN_PAIRS = 4  # the first look: with fewer pairs the noise itself is not estimated
DESIGN_NOISE_CV = 0.09  # run-to-run noise designed for: measured 4-8.4 % here (README)


def design_effects(margin: float) -> list[tuple[float, float]]:
    """(weight, standardized effect) of the slowdowns the test is designed for: mostly twice
    the margin, and some six times it so that a gross slowdown stops at the first looks (the
    t density's heavy tails cap a single design's evidence at 4 pairs below 1/α). The effect is
    the mean ÷ the standard deviation of the pair log ratios at DESIGN_NOISE_CV per run."""
    return [
        (weight, math.log1p(-min(factor * margin, 0.99)) / (math.sqrt(2) * DESIGN_NOISE_CV))
        for weight, factor in ((0.8, 2), (0.2, 6))
    ]


def _t_statistic(values: Sequence[float], shift: float = 0.0) -> float:
    mean = statistics.fmean(values) - shift
    sd = statistics.stdev(values)
    if sd == 0:
        return math.copysign(math.inf, mean) if mean else 0.0
    return mean / (sd / math.sqrt(len(values)))


def evidence(statistics_t: Any, pairs: int, margin: float, direction: int) -> Any:
    """The e-value against "no change" for the designed slowdowns (`direction` −1) or
    speed-ups (+1): the weighted mixture of each design's, itself an e-value."""
    return sum(
        weight * e_values(statistics_t, pairs, -direction * effect)
        for weight, effect in design_effects(margin)
    )


# Beyond this the t statistic's e-value has reached its limit (the densities' tails are
# polynomial); no spread at all (t = ±∞) counts as this, not as infinite evidence.
T_LIMIT = 1e6


def e_values(statistics_t: Any, pairs: int, effect: float) -> Any:
    """Evidence against "no change" in favour of a standardized `effect` (negative: slower),
    for t statistics of `pairs` pairs (a number or a numpy array): the non-central t density
    over the central t density, pairs − 1 degrees of freedom. Large is evidence of the effect;
    small, evidence against it."""
    import numpy as np
    from scipy.stats import nct, t

    statistic = np.clip(np.asarray(statistics_t, dtype=float), -T_LIMIT, T_LIMIT)
    log_e = nct.logpdf(statistic, pairs - 1, effect * math.sqrt(pairs))
    log_e = np.nan_to_num(log_e - t.logpdf(statistic, pairs - 1), nan=0.0, neginf=-700.0)
    return np.exp(np.clip(log_e, -700.0, 700.0))


@functools.lru_cache(maxsize=4096)
def critical_t(pairs: int, margin: float) -> float:
    """The t statistic of `pairs` pairs at which the evidence for a designed slowdown reaches
    1/α (negative); −∞ while no t can reach it."""
    from scipy.optimize import brentq

    def excess(statistic: float) -> float:
        return math.log(float(evidence(statistic, pairs, margin, -1))) + math.log(ALPHA)

    if excess(-T_LIMIT) < 0:
        return -math.inf
    return float(brentq(excess, -T_LIMIT, 0.0, xtol=1e-9, rtol=1e-9))


def confidence_sequence(log_ratios: Sequence[float], margin: float) -> tuple[float, float]:
    """The confidence sequence of the mean log ratio that the test's own e-values give: the
    means μ that neither direction's evidence rejects (e < 1/α for the ratios shifted by μ),
    mean ± |t*| s/√n. Each end holds with 1 − α at any stopping time (90 % for both); it
    excludes 0 exactly when the test has evidence of a change. Unbounded while too few pairs
    could reject anything."""
    pairs = len(log_ratios)
    mean = statistics.fmean(log_ratios)
    if pairs < 2:
        return -math.inf, math.inf
    half = -critical_t(pairs, margin) * statistics.stdev(log_ratios) / math.sqrt(pairs)
    if math.isnan(half):  # no bound (∞) times no spread (0)
        return -math.inf, math.inf
    return mean - half, mean + half


@dataclass
class Look:
    """Where the test stands after some pairs."""

    pairs: int
    estimate: float  # mean log ratio B / A
    low: float  # the confidence sequence of the mean log ratio
    high: float
    evidence: float  # e-value for a slowdown (NaN before two pairs)
    faster_evidence: float  # e-value for a speed-up

    def describe(self) -> str:
        """e.g. '−2.1 % [−9.8, +8.5], e = 0.31'; no interval while it is unbounded."""
        text = f"{100 * math.expm1(self.estimate):+.1f} %"
        if math.isfinite(self.low):
            low, high = (f"{100 * math.expm1(end):+.1f}" for end in (self.low, self.high))
            text += f" [{low}, {high}]"
        else:
            text += " [no interval yet]"
        if not math.isnan(self.evidence):
            text += f", e = {self.evidence:.3g}"
        return text.replace("-", "−")


def look(log_ratios: Sequence[float], margin: float) -> Look:
    """The estimate, confidence sequence and evidence after these pairs (one or more)."""
    estimate = statistics.fmean(log_ratios)
    if len(log_ratios) < 2:
        return Look(len(log_ratios), estimate, -math.inf, math.inf, NAN, NAN)
    pairs, statistic = len(log_ratios), _t_statistic(log_ratios)
    return Look(
        pairs,
        estimate,
        *confidence_sequence(log_ratios, margin),
        float(evidence(statistic, pairs, margin, -1)),
        float(evidence(statistic, pairs, margin, +1)),
    )


def verdict_of(
    evidence: float,
    faster_evidence: float,
    change: float,
    low: float,
    margin: float,
    *,
    last: bool,
) -> tuple[Verdict | None, str]:
    """The rule, on one look's e-values, estimated change (B / A − 1) and the confidence
    sequence's lower end `low` (a log ratio); (None, "") to go on. `ok` also needs that
    interval to rule out a slowdown of twice the margin, so that "ok" never leaves a large
    slowdown open. An undecided last look is inconclusive, its reason left to the caller."""
    bounded = low >= math.log1p(-2 * margin)
    ruled_out = f"; a slowdown beyond {200 * margin:g} % is ruled out"
    within = f", by less than the {100 * margin:g} % margin{ruled_out}"
    if evidence >= 1 / ALPHA:
        reason = f"evidence of a slowdown (e = {evidence:.3g} ≥ {1 / ALPHA:g})"
        if change < -margin:
            return Verdict.SLOWER, reason
        if bounded:
            return Verdict.OK, reason + within
    elif faster_evidence >= 1 / ALPHA:
        reason = f"evidence of a speed-up (e = {faster_evidence:.3g} ≥ {1 / ALPHA:g})"
        if change > margin:
            return Verdict.FASTER, reason
        if bounded:
            return Verdict.OK, reason + within
    elif evidence <= ALPHA and bounded:
        return Verdict.OK, f"no sign of a slowdown (e = {evidence:.2g} ≤ {ALPHA:g}){ruled_out}"
    return (Verdict.INCONCLUSIVE, "") if last else (None, "")


def decide(
    log_ratios: Sequence[float], margin: float, *, last: bool, why_last: str = ""
) -> SpeedEffect | None:
    """The verdict after these pairs, or None to run another pair. `last`: no more pairs will
    come (the cap), so an undecided test ends inconclusive, saying `why_last`.

    - slower: evidence of a slowdown (e ≥ 1/α) and an estimate beyond the margin;
    - faster: the same, the other way;
    - ok: no sign of a slowdown (e ≤ α), or a real change within the margin, either with the
      interval ruling out a slowdown of twice the margin;
    - inconclusive: the cap came first."""
    if len(log_ratios) < MIN_PAIRS and not last:
        return None
    now = look(log_ratios, margin)
    verdict, reason = verdict_of(
        now.evidence, now.faster_evidence, math.expm1(now.estimate), now.low, margin, last=last
    )
    if verdict is None:
        return None
    pairs = len(log_ratios)
    return SpeedEffect.of_logs(
        now.estimate,
        now.low,
        now.high,
        verdict=verdict,
        reason=reason or why_last,
        runs_a=pairs,
        runs_b=pairs,
        margin=margin,
        noise_cv=statistics.stdev(log_ratios) / math.sqrt(2) if pairs > 1 else NAN,
        evidence=now.evidence,
        interval="90 % confidence sequence (each end 95 %), valid at any stop",
    )


def verdict_after(
    log_ratios: Sequence[float],
    margin: float,
    *,
    elapsed_s: float,
    max_pairs: int,
    max_time_s: float,
) -> SpeedEffect | None:
    """`ab`'s verdict once these pairs took `elapsed_s`, or None to run another: the caps
    end it when `max_pairs` are done or another pair (at their mean duration) would pass
    `max_time_s`."""
    pairs = len(log_ratios)
    capped = pairs >= max_pairs
    out_of_time = elapsed_s * (pairs + 1) / pairs > max_time_s
    why_last = (
        f"no verdict within {max_pairs} pairs (--max-pairs)"
        if capped
        else f"another pair would pass {max_time_s / 60:g} minutes (--max-time)"
    )
    return decide(log_ratios, margin, last=capped or out_of_time, why_last=why_last)


def pair_seconds(starts: Sequence[datetime]) -> list[float]:
    """How long each recorded pair took, from the start of each pair's first run: to the next
    pair's start, the last one their mean (0 for a lone pair)."""
    seconds = [(later - earlier).total_seconds() for earlier, later in pairwise(starts)]
    return [*seconds, statistics.fmean(seconds) if seconds else 0.0]


def replay(
    log_ratios: Sequence[float],
    seconds: Sequence[float],
    margin: float,
    *,
    max_pairs: int,
    max_time_s: float,
) -> tuple[SpeedEffect, int] | None:
    """The verdict `ab` reaches on pairs recorded in this order (each taking `seconds`), and
    the pairs it used; None when the recording ends before the rule or its caps do."""
    elapsed = 0.0
    for pairs, took in enumerate(seconds[: len(log_ratios)], 1):
        elapsed += took
        effect = verdict_after(
            log_ratios[:pairs], margin, elapsed_s=elapsed, max_pairs=max_pairs,
            max_time_s=max_time_s,
        )  # fmt: skip
        if effect is not None:
            return effect, pairs
    return None


@dataclass
class Simulated:
    """The rule's operating characteristic at one true slowdown and noise level."""

    slowdown: float  # true: 0.10 is B 10 % slower
    noise_cv: float  # run to run
    interference: float  # share of runs slowed by other work (10-30 %)
    shares: dict[Verdict, float]  # share of comparisons ending in each verdict
    mean_pairs: float  # pairs to a verdict
    p90_pairs: float


def simulate(
    slowdown: float,
    noise_cv: float,
    *,
    margin: float,
    comparisons: int,
    max_pairs: int,
    interference: float = 0.0,
    seed: int = 0,
) -> Simulated:
    """Run the rule on `comparisons` simulated A/Bs: each run's log throughput is its variant's
    plus normal noise (drift cancels within a pair), a share `interference` of runs slowed by
    10-30 % more; the test stops as `ab` does, at the latest after `max_pairs`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (comparisons, max_pairs)
    runs = [rng.normal(shift, noise_cv, shape) for shift in (0.0, math.log1p(-slowdown))]
    for side in runs:
        hit = rng.random(shape) < interference
        side += np.log1p(-rng.uniform(0.1, 0.3, shape) * hit)
    ratios = runs[1] - runs[0]
    verdicts: list[Verdict | None] = [None] * comparisons
    used = np.full(comparisons, max_pairs)
    for pairs in range(MIN_PAIRS, max_pairs + 1):
        active = [i for i, verdict in enumerate(verdicts) if verdict is None]
        if not active:
            break
        window = ratios[active, :pairs]
        means = window.mean(axis=1)
        spreads = window.std(axis=1, ddof=1) / math.sqrt(pairs)
        statistic = means / spreads
        lows = means + critical_t(pairs, margin) * spreads
        slower, faster = (evidence(statistic, pairs, margin, sign) for sign in (-1, 1))
        for index, row in enumerate(active):
            verdict, _ = verdict_of(
                slower[index], faster[index], math.expm1(means[index]), lows[index], margin,
                last=pairs == max_pairs,
            )  # fmt: skip
            verdicts[row], used[row] = verdict, pairs
    counted = {verdict: verdicts.count(verdict) / comparisons for verdict in set(verdicts)}
    return Simulated(
        slowdown,
        noise_cv,
        interference,
        {verdict: share for verdict, share in counted.items() if verdict is not None},
        float(used.mean()),
        float(np.quantile(used, 0.9)),
    )
