"""Verdicts of new runs against a baseline, and of accuracy over seeds: one-sided, evidence of a
regression beyond the margin, never a failure for want of evidence."""

import math
import random
import statistics

import pytest

from bench.config.settings import ASSUMED_DRIFT
from bench.judge.stats import (
    Verdict,
    compare_accuracies,
    compare_to_baseline,
    pooled_drift,
    simulate_against_baseline,
)


def replicates(level: float, noise: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [level * math.exp(rng.gauss(0, noise)) for _ in range(n)]


def test_a_one_sitting_baseline_flags_a_two_times_slowdown_with_the_assumed_drift():
    effect = compare_to_baseline([10_000], [5_000], 0.10, noise_cv=None, drift=None, sittings=1)
    assert effect.verdict == Verdict.SLOWER, effect.describe()
    assert effect.high < 1 and effect.drift == pytest.approx(ASSUMED_DRIFT)
    assert "partly assumed" in effect.reason


def test_identical_runs_against_a_one_sitting_baseline_pass_and_say_what_they_could_miss():
    effect = compare_to_baseline(
        [10_000] * 3, [10_000], 0.10, noise_cv=0.03, drift=None, sittings=1
    )
    assert effect.verdict == Verdict.INCONCLUSIVE  # exit 0: no evidence of a regression
    assert 0.2 < effect.could_miss < 0.5
    assert effect.detectable > 0.25  # the note then says: use `ab`


def test_runs_in_the_baselines_own_sitting_carry_no_drift_and_can_be_ok():
    baseline = replicates(10_000, 0.03, 5, seed=1)
    runs = replicates(10_000, 0.03, 5, seed=2)
    apart = compare_to_baseline(baseline, runs, 0.10, noise_cv=0.03, drift=None, sittings=1)
    together = compare_to_baseline(
        baseline, runs, 0.10, noise_cv=0.03, drift=None, sittings=1, same_sitting=True
    )
    assert together.drift == 0 and together.verdict == Verdict.OK, together.describe()
    assert apart.verdict == Verdict.INCONCLUSIVE
    assert together.high - together.low < apart.high - apart.low


def test_a_real_slowdown_inside_the_margin_is_not_a_regression():
    baseline = replicates(10_000, 0.005, 8, seed=3)
    runs = replicates(9_700, 0.005, 8, seed=4)
    effect = compare_to_baseline(
        baseline, runs, 0.10, noise_cv=0.005, drift=None, sittings=1, same_sitting=True
    )
    assert effect.high < 1 and effect.verdict == Verdict.OK
    assert "smaller than" in effect.reason or "rules out" in effect.reason


def test_faster_needs_evidence_and_a_change_beyond_the_margin():
    effect = compare_to_baseline(
        [10_000] * 4, [16_000] * 2, 0.10, noise_cv=0.02, drift=0.02, sittings=3
    )
    assert effect.verdict == Verdict.FASTER and effect.low > 1


def test_the_assumed_drift_is_pooled_with_a_rough_measurement_and_dropped_from_three_sittings():
    assert pooled_drift(None, 1, 0.08) == (pytest.approx(0.08), 4)
    two, dof = pooled_drift(0.02, 2, 0.08)
    assert 0.02 < two < 0.08 and dof == 5  # one degree of freedom measured, four assumed
    assert pooled_drift(0.02, 3, 0.08) == (0.02, 2)
    more_drift = compare_to_baseline(
        [10_000] * 6, [9_000], 0.10, noise_cv=0.02, drift=None, sittings=1, assumed_drift=0.15
    )
    less_drift = compare_to_baseline(
        [10_000] * 6, [9_000], 0.10, noise_cv=0.02, drift=None, sittings=1, assumed_drift=0.02
    )
    assert more_drift.low < less_drift.low


@pytest.mark.parametrize(
    ("true_drift", "most_alarms", "fewest_alarms"),
    [(0.03, 0.01, 0.0), (ASSUMED_DRIFT, 0.05, 0.0), (0.15, 0.25, 0.07)],
)
def test_false_alarms_against_a_one_sitting_baseline_follow_the_true_drift(
    true_drift, most_alarms, fewest_alarms
):
    """Identical code; the baseline's sitting and the new one each at their own level of the
    machine (docs/compare.md: 0 / 2.0 / 12.8 % false alarms at a true drift of 3 / 8 / 15 %, the 8 %
    assumed): within the assumption the gate holds its 5 %, beyond it it does not — which the
    notes say where the baseline's own sittings measured more. A 2× slowdown is caught."""
    same = simulate_against_baseline(0.0, true_drift, margin=0.10, comparisons=400, seed=3)
    assert fewest_alarms <= same.get(Verdict.SLOWER, 0) <= most_alarms
    assert same.get(Verdict.INCONCLUSIVE, 0) >= 0.5  # why --strict mostly fails here
    halved = simulate_against_baseline(0.5, true_drift, margin=0.10, comparisons=200, seed=4)
    assert halved.get(Verdict.SLOWER, 0) >= 0.95


def test_a_baseline_of_three_sittings_holds_the_level_whatever_the_true_drift():
    """Three sittings measure the drift: false alarms stay near 5 % at 3, 8 and 15 % (README:
    0.2 / 3.9 / 5.1 %)."""
    for true_drift in (0.03, ASSUMED_DRIFT, 0.15):
        same = simulate_against_baseline(
            0.0, true_drift, margin=0.10, comparisons=300, sittings=3, seed=5
        )
        assert same.get(Verdict.SLOWER, 0) <= 0.08


def test_a_measured_drift_above_the_assumed_one_is_said():
    effect = compare_to_baseline(
        [10_000, 10_100, 12_000, 12_100], [11_000], 0.10, noise_cv=0.01, drift=0.13, sittings=2
    )
    assert "measured ±13.0 %, more than the ±8.0 % assumed" in effect.reason
    assert "--assumed-drift 13" in effect.reason
    calm = compare_to_baseline(
        [10_000, 10_100, 10_200, 10_300], [10_100], 0.10, noise_cv=0.01, drift=0.01, sittings=2
    )
    assert "more than the" not in calm.reason


@pytest.mark.parametrize("sittings", [1, 2, 3, 5])
def test_false_alarms_stay_near_five_percent_whatever_the_baselines_sittings(sittings):
    """A drift measured from few sittings is itself uncertain; the bounds carry that
    uncertainty (Welch–Satterthwaite), so a third sitting does not make the gate jumpier."""
    rng = random.Random(sittings)
    alarms, trials = 0, 400
    for _ in range(trials):
        offsets = [rng.gauss(0, ASSUMED_DRIFT) for _ in range(sittings + 1)]
        baseline = [
            rate
            for offset in offsets[:-1]
            for rate in replicates(10_000 * math.exp(offset), 0.03, 4, rng.randrange(10**6))
        ]
        medians = [math.exp(offset) for offset in offsets[:-1]]
        measured = statistics.stdev(medians) / statistics.fmean(medians) if sittings > 1 else None
        runs = replicates(10_000 * math.exp(offsets[-1]), 0.03, 3, seed=rng.randrange(10**6))
        effect = compare_to_baseline(
            baseline, runs, 0.10, noise_cv=0.03, drift=measured, sittings=sittings
        )
        alarms += effect.verdict == Verdict.SLOWER
    assert alarms / trials <= 0.06


def test_accuracy_over_seeds_gets_the_same_one_sided_rule():
    base = [98.5, 98.6, 98.4, 98.55, 98.45]
    lower = compare_accuracies(base, [a - 1.0 for a in base], 0.3)
    assert lower.verdict == Verdict.LESS_ACCURATE and lower.high < 0
    assert compare_accuracies(base, list(base), 0.3).verdict == Verdict.OK
    same = compare_accuracies([98.0] * 4, [98.0] * 4, 0.3)
    assert same.verdict == Verdict.OK and same.low == same.high == 0
    few = compare_accuracies(base, base[:1], 0.3)
    assert few.verdict == Verdict.INCONCLUSIVE and "too few seeds" in few.reason
    assert "vs 1 seed)" in few.describe()


def test_a_huge_baseline_is_judged_in_bounded_time_and_memory():
    """No resampling: a baseline of 200,000 runs is one pass over the figures."""
    baseline = replicates(10_000, 0.04, 200_000, seed=5)
    effect = compare_to_baseline(baseline, [9_900], 0.10, noise_cv=0.04, drift=0.05, sittings=4)
    assert effect.verdict in (Verdict.OK, Verdict.INCONCLUSIVE)
    accuracy = compare_accuracies([98.0, 98.2] * 50_000, [98.1] * 3, 0.3)
    assert accuracy.verdict == Verdict.OK
