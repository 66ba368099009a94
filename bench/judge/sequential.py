"""An anytime-valid test of B against A over interleaved pairs, for `ab`. Pure.

Each pair (one run of A, one of B, adjacent in time, in an order a seeded coin chose) gives
one figure: the log ratio of B's throughput to A's, so that slow drift of the machine, which
hits both runs of a pair alike, cancels. After every pair the test may stop; its error rates
hold whenever it stops, however often it looked (Ville's inequality), which a t-test repeated
after every pair does not.

- Evidence of a slowdown: the safe t-test's e-value (Pérez-Ortiz, Lardy, de Heide, Grünwald,
  "E-statistics, group invariance and anytime-valid testing"): the likelihood ratio of the
  t statistic under a designed slowdown (non-central t) to its density under "no change"
  (central t). It does not depend on the unknown noise level, and under "B is not slower" it
  exceeds 1/α with probability at most α, at any stopping time. It is computed in log space
  by quadrature (log_e_values), so that it stays finite for any number of pairs.
- The design (bench.config.settings.AbDesign): mostly a slowdown of twice the margin, partly
  one of six times it, at AB_NOISE_CV run-to-run noise (the upper end measured on the 2-core
  machine); the weighted mixture of their e-values is an e-value too. A larger true slowdown
  is found sooner; noise below the design makes it sooner too.
- The interval: a normal-mixture confidence sequence of the mean log ratio (the t-test's
  Bayes factor with a normal prior on the standardized change, as safestats'
  computeConfidenceIntervalT): mean ± s/√n · √W(n). With probability CS_LEVEL it covers
  the true mean at every pair at once, so it is valid wherever the test stopped, and it
  narrows like √(log n / n).
- The gate: `slower` needs the e-value's evidence, an estimate beyond the margin and the
  interval's far end beyond half the margin; so a true slowdown of half the margin or less
  (no change included) ends `slower` at most 1 − CS_LEVEL of the time, whenever it stops.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from bench.config.settings import AB_ALPHA, AB_MIN_PAIRS, AbDesign
from bench.judge.stats import NAN, SpeedEffect, Verdict

ALPHA = AB_ALPHA  # false "slower" (identical variants) at most this often, whenever it stops
MIN_PAIRS = AB_MIN_PAIRS
CS_LEVEL = 0.90  # the confidence sequence covers the true mean at every pair at once
# The normal prior's variance of the standardized change behind the confidence sequence:
# wide enough that the interval is bounded from the first look (4 pairs) on.
CS_PRIOR_VARIANCE = 2.0


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """The mean and standard deviation (n − 1) of two or more values, in one pass over
    math.fsum: what every look takes, for up to 1,000 pairs."""
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1))


def _t_statistic(mean: float, sd: float, pairs: int) -> float:
    if sd == 0:
        return math.copysign(math.inf, mean) if mean else 0.0
    return mean / (sd / math.sqrt(pairs))


def evidence(statistics_t: Any, pairs: int, margin: float, direction: int) -> Any:
    """The e-value against "no change" for the designed slowdowns (`direction` −1) or
    speed-ups (+1): the weighted mixture of each design's, itself an e-value."""
    import numpy as np

    logs = [
        math.log(weight) + log_e_values(statistics_t, pairs, -direction * effect)
        for weight, effect in AbDesign(margin_pct=100 * margin).effects
    ]
    return np.exp(np.clip(np.logaddexp.reduce(logs, axis=0), -LOG_E_LIMIT, LOG_E_LIMIT))


# Beyond this the t statistic's e-value has reached its limit (the densities' tails are
# polynomial); no spread at all (t = ±∞) counts as this, not as infinite evidence.
T_LIMIT = 1e6
LOG_E_LIMIT = 700.0  # e-values are kept within e^±700, inside a float's range
# The quadrature of log_e_values: nodes, and how far below and above the integrand's peak
# they reach (in its standard deviations on the log scale): 1e-9 of scipy's exact density.
QUADRATURE_NODES, QUADRATURE_REACH = 129, (-40.0, 12.0)


def log_e_values(statistics_t: Any, pairs: int, effect: float) -> Any:
    """The log of the evidence against "no change" in favour of a standardized `effect`
    (negative: slower), for t statistics of `pairs` pairs (a number or a numpy array): the
    non-central t density over the central t density, ν = pairs − 1 degrees of freedom.
    Large is evidence of the effect; small, evidence against it.

    Both densities share the factor that overflows scipy's non-central t (from ν ≈ 344 on),
    so the ratio is taken in closed form but for one integral: with μ = effect·√pairs and
    a = μt/√(ν + t²), it is exp(−μ²/2) ∫ x^ν e^(−x²/2 + ax) dx / ∫ x^ν e^(−x²/2) dx over
    x > 0. The denominator is 2^((ν−1)/2) Γ((ν+1)/2); the numerator is summed in log space
    over y = log x, around the peak of its log-concave integrand."""
    import numpy as np
    from scipy.special import gammaln

    statistic = np.clip(np.asarray(statistics_t, dtype=float), -T_LIMIT, T_LIMIT)
    nu, shift = pairs - 1, effect * math.sqrt(pairs)
    a = shift * statistic / np.sqrt(nu + statistic**2)
    power = nu + 1.0  # of x, with dx = x dy
    peak = 2 * power / (np.sqrt(a**2 + 4 * power) - a)  # x at the peak, stable for a ≪ 0
    spread = 1 / np.sqrt(peak**2 + power)  # in y, from the curvature at the peak
    steps = np.linspace(*QUADRATURE_REACH, QUADRATURE_NODES)
    y = np.log(peak)[..., None] + spread[..., None] * steps
    x = np.exp(y)
    log_integral = np.logaddexp.reduce(power * y - x**2 / 2 + a[..., None] * x, axis=-1)
    log_integral += np.log(spread * (steps[1] - steps[0]))
    log_central = (nu - 1) / 2 * math.log(2) + gammaln((nu + 1) / 2)
    return -(shift**2) / 2 + log_integral - log_central


def e_values(statistics_t: Any, pairs: int, effect: float) -> Any:
    """exp(log_e_values), kept within e^±LOG_E_LIMIT."""
    import numpy as np

    return np.exp(np.clip(log_e_values(statistics_t, pairs, effect), -LOG_E_LIMIT, LOG_E_LIMIT))


def cs_width(pairs: int, miscoverage: float = 1 - CS_LEVEL) -> float:
    """√W(n): the confidence sequence's half-width in standard errors (s/√n) after `pairs`
    pairs; ∞ while it is unbounded. Where the normal-mixture Bayes factor of the t-test (prior
    variance g = CS_PRIOR_VARIANCE on the standardized mean) reaches 1/(1 − CS_LEVEL):
    W = ν(r − 1) / (1 − r/(1 + ng)), r = ((1 + ng)/α²)^(1/(ν + 1)), as safestats'
    computeConfidenceIntervalT."""
    nu, spread = pairs - 1, 1 + pairs * CS_PRIOR_VARIANCE
    if nu < 1:
        return math.inf
    r = math.exp((math.log(spread) - 2 * math.log(miscoverage)) / (nu + 1))
    below = 1 - r / spread
    return math.sqrt(nu * (r - 1) / below) if below > 0 else math.inf


def confidence_sequence(log_ratios: Sequence[float]) -> tuple[float, float]:
    """The normal-mixture confidence sequence of the mean log ratio after these pairs:
    mean ± cs_width · s/√n. It covers the true mean at every pair at once with CS_LEVEL
    (so at whatever pair the test stopped), whatever the noise level, and narrows like
    √(log n / n). Unbounded while too few pairs bound it."""
    if len(log_ratios) < 2:
        return -math.inf, math.inf
    return _bounds(*_mean_sd(log_ratios), len(log_ratios))


def _bounds(
    mean: float, sd: float, pairs: int, miscoverage: float = 1 - CS_LEVEL
) -> tuple[float, float]:
    half = cs_width(pairs, miscoverage) * sd / math.sqrt(pairs)
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
    spread: float = NAN  # standard deviation of the log ratios (NaN before two pairs)

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
    if len(log_ratios) < 2:
        return Look(len(log_ratios), log_ratios[0], -math.inf, math.inf, NAN, NAN)
    pairs = len(log_ratios)
    mean, sd = _mean_sd(log_ratios)
    statistic = _t_statistic(mean, sd, pairs)
    return Look(
        pairs,
        mean,
        *_bounds(mean, sd, pairs),
        float(evidence(statistic, pairs, margin, -1)),
        float(evidence(statistic, pairs, margin, +1)),
        sd,
    )


def verdict_of(
    evidence: float,
    faster_evidence: float,
    change: float,
    interval: tuple[float, float],
    margin: float,
    *,
    last: bool,
    alpha: float = ALPHA,
) -> tuple[Verdict | None, str]:
    """The rule, on one look's e-values, estimated change (B / A − 1) and confidence sequence
    (`interval`, log ratios); (None, "") to go on. `slower` needs the interval's far end
    beyond half the margin, `faster` likewise; `ok` needs the interval to rule out a slowdown
    of twice the margin and not to lie wholly beyond the margin (nor, for "no sign of a
    slowdown", below no change), so that no verdict contradicts the printed interval. An
    undecided last look is inconclusive, its reason left to the caller. `alpha`: the level
    (ALPHA; `bisect` splits it over its steps)."""
    low, high = interval
    bounded = low >= math.log1p(-2 * margin)
    ruled_out = f"; a slowdown beyond {200 * margin:g} % is ruled out"
    within = f", by less than the {100 * margin:g} % margin{ruled_out}"
    inside = bounded and high >= math.log1p(-margin)
    half = f"{50 * margin:g} %"
    if evidence >= 1 / alpha:
        reason = f"evidence of a slowdown (e = {evidence:.3g} ≥ {1 / alpha:g})"
        if change < -margin and high < math.log1p(-margin / 2):
            return Verdict.SLOWER, reason + f", the interval wholly beyond −{half}"
        if change >= -margin and inside:
            return Verdict.OK, reason + within
    elif faster_evidence >= 1 / alpha:
        reason = f"evidence of a speed-up (e = {faster_evidence:.3g} ≥ {1 / alpha:g})"
        if change > margin and low > math.log1p(margin / 2):
            return Verdict.FASTER, reason + f", the interval wholly beyond +{half}"
        if change <= margin and inside:
            return Verdict.OK, reason + within
    elif evidence <= alpha and bounded and high >= 0:
        return Verdict.OK, f"no sign of a slowdown (e = {evidence:.2g} ≤ {alpha:g}){ruled_out}"
    return (Verdict.INCONCLUSIVE, "") if last else (None, "")


def decide(
    log_ratios: Sequence[float],
    margin: float,
    *,
    last: bool,
    why_last: str = "",
    alpha: float = ALPHA,
) -> SpeedEffect | None:
    """The verdict after these pairs, or None to run another pair. `last`: no more pairs will
    come (the cap), so an undecided test ends inconclusive, saying `why_last`.

    - slower: evidence of a slowdown (e ≥ 1/α), an estimate beyond the margin and the
      confidence sequence wholly beyond half the margin;
    - faster: the same, the other way;
    - ok: no sign of a slowdown (e ≤ α), or a real change within the margin, either with the
      interval ruling out a slowdown of twice the margin;
    - inconclusive: the cap came first."""
    if len(log_ratios) < MIN_PAIRS and not last:
        return None
    now = look(log_ratios, margin)
    verdict, reason = verdict_of(
        now.evidence, now.faster_evidence, math.expm1(now.estimate), (now.low, now.high),
        margin, last=last, alpha=alpha,
    )  # fmt: skip
    if verdict is None:
        return None
    return _effect(now, verdict, reason or why_last, margin, 1 - CS_LEVEL)


def _effect(
    now: Look, verdict: Verdict, reason: str, margin: float, miscoverage: float
) -> SpeedEffect:
    """A look's verdict as the effect every command prints, its interval named by level."""
    return SpeedEffect.of_logs(
        now.estimate,
        now.low,
        now.high,
        verdict=verdict,
        reason=reason,
        runs_a=now.pairs,
        runs_b=now.pairs,
        margin=margin,
        noise_cv=now.spread / math.sqrt(2),
        evidence=now.evidence,
        interval=f"{100 * (1 - miscoverage):g} % confidence sequence, valid at any stop",
    )


def bisect_decide(
    log_ratios: Sequence[float],
    margin: float,
    *,
    last: bool,
    why_last: str = "",
    alpha: float = ALPHA,
    threshold: float,
) -> SpeedEffect | None:
    """A bisection step's answer, B (the step's commit) against A (good), once bad is known
    slower: SLOWER when the confidence sequence at miscoverage `alpha` lies wholly beyond
    `threshold` (a log ratio: half of bad's slowdown), OK when it lies wholly short of it, None
    to go on (INCONCLUSIVE at the cap). The sequence covers the true mean at every pair at once
    with 1 − alpha, so a step puts its commit on the wrong side of the threshold at most alpha
    of the time, whenever it stops."""
    if len(log_ratios) < MIN_PAIRS and not last:
        return None
    if len(log_ratios) < 2:
        return decide(log_ratios, margin, last=True, why_last=why_last)
    mean, sd = _mean_sd(log_ratios)
    pairs = len(log_ratios)
    now = Look(pairs, mean, *_bounds(mean, sd, pairs, alpha), NAN, NAN, sd)
    half = f"{100 * math.expm1(threshold):+.1f} % (half of bad's slowdown)"
    if now.high < threshold:
        return _effect(now, Verdict.SLOWER, f"the interval lies wholly beyond {half}: like bad",
                       margin, alpha)  # fmt: skip
    if now.low > threshold:
        return _effect(now, Verdict.OK, f"the interval lies wholly short of {half}: like good",
                       margin, alpha)  # fmt: skip
    return _effect(now, Verdict.INCONCLUSIVE, why_last, margin, alpha) if last else None


Decider = Callable[..., "SpeedEffect | None"]


def verdict_after(
    log_ratios: Sequence[float],
    margin: float,
    *,
    elapsed_s: float,
    max_pairs: int,
    max_time_s: float,
    alpha: float = ALPHA,
    rule: Decider = decide,
) -> SpeedEffect | None:
    """`ab`'s verdict once these pairs took `elapsed_s`, or None to run another: the caps
    end it when `max_pairs` are done or another pair (at their mean duration) would pass
    `max_time_s`. `rule`: decide, or a bisection step's bisect_decide."""
    pairs = len(log_ratios)
    capped = pairs >= max_pairs
    out_of_time = elapsed_s * (pairs + 1) / pairs > max_time_s
    why_last = (
        f"no verdict within {max_pairs} pairs (--max-pairs)"
        if capped
        else f"another pair would pass {max_time_s / 60:g} minutes (--max-time)"
    )
    return rule(log_ratios, margin, last=capped or out_of_time, why_last=why_last, alpha=alpha)


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
    alpha: float = ALPHA,
) -> tuple[SpeedEffect, int] | None:
    """The verdict `ab` reaches on pairs recorded in this order (each taking `seconds`), and
    the pairs it used; None when the recording ends before the rule or its caps do."""
    elapsed = 0.0
    for pairs, took in enumerate(seconds[: len(log_ratios)], 1):
        elapsed += took
        effect = verdict_after(
            log_ratios[:pairs], margin, elapsed_s=elapsed, max_pairs=max_pairs,
            max_time_s=max_time_s, alpha=alpha,
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
    mean_slower_change: float  # the estimated change B / A − 1 where it said slower (NaN: none)


def simulated_ratios(
    slowdown: float,
    noise_cv: float,
    *,
    comparisons: int,
    max_pairs: int,
    interference: float = 0.0,
    correlation: float = 0.0,
    drift: float = 0.0,
    coin: bool = True,
    seed: int = 0,
) -> Any:
    """Pair log ratios B / A of simulated A/Bs (comparisons × max_pairs): each run's log
    throughput is its variant's plus normal noise whose neighbours in time correlate
    (`correlation`, first-order autoregressive) plus a linear drift of the machine (`drift`
    over the whole series), a share `interference` of runs slowed by 10-30 % more. Each pair
    runs in an order from a seeded coin (`coin`) or strictly A B, B A, A B …"""
    import numpy as np

    rng = np.random.default_rng(seed)
    runs = 2 * max_pairs
    shocks = rng.normal(0.0, noise_cv, (comparisons, runs))
    noise = np.empty_like(shocks)
    noise[:, 0] = shocks[:, 0]
    for run in range(1, runs):
        noise[:, run] = (
            correlation * noise[:, run - 1] + math.sqrt(1 - correlation**2) * shocks[:, run]
        )
    noise += np.log1p(
        -rng.uniform(0.1, 0.3, noise.shape) * (rng.random(noise.shape) < interference)
    )
    noise += np.linspace(0.0, math.log1p(-drift), runs)
    if coin:
        b_first = rng.random((comparisons, max_pairs)) < 0.5
    else:
        b_first = np.broadcast_to(np.arange(max_pairs) % 2 == 1, (comparisons, max_pairs))
    first, second = noise[:, 0::2], noise[:, 1::2]
    b_runs = np.where(b_first, first, second) + math.log1p(-slowdown)
    a_runs = np.where(b_first, second, first)
    return b_runs - a_runs


def simulate(
    slowdown: float,
    noise_cv: float,
    *,
    margin: float,
    comparisons: int,
    max_pairs: int,
    seed: int = 0,
    **model: Any,
) -> Simulated:
    """Run the rule on `comparisons` simulated A/Bs (simulated_ratios, with `model`'s noise);
    the test stops as `ab` does, at the latest after `max_pairs`."""
    import numpy as np

    ratios = simulated_ratios(
        slowdown, noise_cv, comparisons=comparisons, max_pairs=max_pairs, seed=seed, **model
    )
    verdicts: list[Verdict | None] = [None] * comparisons
    used = np.full(comparisons, max_pairs)
    changes = np.full(comparisons, np.nan)
    for pairs in range(MIN_PAIRS, max_pairs + 1):
        active = [i for i, verdict in enumerate(verdicts) if verdict is None]
        if not active:
            break
        window = ratios[active, :pairs]
        means = window.mean(axis=1)
        spreads = window.std(axis=1, ddof=1) / math.sqrt(pairs)
        statistic = means / spreads
        half = cs_width(pairs) * spreads
        slower, faster = (evidence(statistic, pairs, margin, sign) for sign in (-1, 1))
        for index, row in enumerate(active):
            verdict, _ = verdict_of(
                slower[index], faster[index], math.expm1(means[index]),
                (means[index] - half[index], means[index] + half[index]), margin,
                last=pairs == max_pairs,
            )  # fmt: skip
            verdicts[row], used[row], changes[row] = verdict, pairs, math.expm1(means[index])
    counted = {verdict: verdicts.count(verdict) / comparisons for verdict in set(verdicts)}
    slower_changes = [changes[i] for i, verdict in enumerate(verdicts) if verdict == Verdict.SLOWER]
    return Simulated(
        slowdown,
        noise_cv,
        model.get("interference", 0.0),
        {verdict: share for verdict, share in counted.items() if verdict is not None},
        float(used.mean()),
        float(np.quantile(used, 0.9)),
        statistics.fmean(slower_changes) if slower_changes else NAN,
    )


def crossing_share(ratios: Any, margin: float) -> float:
    """The share of simulated streams of pair log ratios (rows) whose evidence of a slowdown
    reaches 1/α at some look, however long: the test martingale's own false-alarm rate when
    the streams hold no change."""
    import numpy as np

    crossed = np.zeros(len(ratios), dtype=bool)
    for pairs in range(MIN_PAIRS, ratios.shape[1] + 1):
        window = ratios[~crossed, :pairs]
        statistic = window.mean(axis=1) / (window.std(axis=1, ddof=1) / math.sqrt(pairs))
        crossed[np.flatnonzero(~crossed)[evidence(statistic, pairs, margin, -1) >= 1 / ALPHA]] = (
            True
        )
    return float(crossed.mean())
