"""Speed verdicts from run-level replicates: effect, interval, test, and what more runs buy."""

import random

import pytest

from bench.judge.stats import (
    compare_accuracies,
    compare_speeds,
    compare_to_baseline,
    detectable_slowdown,
    runs_needed,
)


def replicates(level: float, noise: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [level * (1 + rng.gauss(0, noise)) for _ in range(n)]


@pytest.mark.parametrize(
    ("scale", "verdict"), [(1.0, "ok"), (0.80, "slower"), (1.25, "faster"), (0.5, "slower")]
)
def test_clear_effects_get_their_verdict_with_an_interval(scale, verdict):
    a = replicates(20_000, 0.01, 5, seed=1)
    b = replicates(20_000 * scale, 0.01, 5, seed=2)
    effect = compare_speeds(a, b, margin=0.05)
    assert effect.verdict == verdict, effect.describe()
    assert effect.low <= effect.ratio <= effect.high
    assert effect.describe().startswith(verdict)


def test_a_slowdown_of_about_the_margin_is_inconclusive_not_ok():
    a = replicates(20_000, 0.015, 5, seed=3)
    b = replicates(20_000 * 0.95, 0.015, 5, seed=4)
    effect = compare_speeds(a, b, margin=0.05)
    assert effect.verdict == "inconclusive" and "margin" in effect.reason


def test_too_few_runs_are_inconclusive_and_say_so():
    effect = compare_speeds([1.0, 1.1], [0.5, 0.6], margin=0.05)
    assert effect.verdict == "inconclusive" and "too few runs" in effect.reason


def test_noise_makes_a_real_slowdown_inconclusive_rather_than_ok():
    a = replicates(20_000, 0.25, 5, seed=5)
    b = replicates(20_000 * 0.9, 0.25, 5, seed=6)
    assert compare_speeds(a, b, margin=0.05).verdict == "inconclusive"


def test_what_it_would_take_grows_with_noise_and_shrinks_with_the_effect():
    assert runs_needed(0.10, 0.05, 0.02) < runs_needed(0.10, 0.05, 0.04)
    assert runs_needed(0.20, 0.05, 0.04) < runs_needed(0.10, 0.05, 0.04)
    assert runs_needed(0.05, 0.05, 0.01) is None  # nothing clears the margin it equals
    assert detectable_slowdown(20, 0.05, 0.02) < detectable_slowdown(5, 0.05, 0.02)
    # The two are inverses: the detectable slowdown of n runs needs at most n runs.
    assert runs_needed(detectable_slowdown(8, 0.05, 0.02) + 1e-9, 0.05, 0.02) <= 8


def test_a_baseline_of_one_sitting_cannot_judge_speed_and_says_why():
    effect = compare_to_baseline([10_000] * 5, [5_000], 0.10, noise_cv=0.01, drift=None, sittings=2)
    assert effect.verdict == "inconclusive" and "one sitting" in effect.reason
    assert effect.ratio == pytest.approx(0.5)


@pytest.mark.parametrize(("scale", "verdict"), [(0.5, "slower"), (2.0, "faster")])
def test_one_run_far_outside_the_drift_gets_a_verdict(scale, verdict):
    baseline = replicates(20_000, 0.01, 10, seed=7)
    effect = compare_to_baseline(
        baseline, [20_000 * scale], 0.10, noise_cv=0.01, drift=0.05, sittings=2
    )
    assert effect.verdict == verdict and effect.low <= effect.ratio <= effect.high
    assert "10 vs 1 runs" in effect.describe()
    assert "drift" in effect.describe()


def test_one_run_equal_to_its_baseline_is_never_slower_and_not_ok_past_the_drift():
    baseline = replicates(20_000, 0.01, 10, seed=8)
    effect = compare_to_baseline(baseline, [20_000], 0.10, noise_cv=0.01, drift=0.06, sittings=2)
    assert effect.verdict == "inconclusive" and "drift" in effect.reason


def test_drift_widens_the_interval_of_a_group():
    baseline = replicates(20_000, 0.01, 10, seed=9)
    runs = replicates(20_000 * 0.85, 0.01, 5, seed=10)
    calm = compare_to_baseline(baseline, runs, 0.10, noise_cv=0.01, drift=0.0, sittings=2)
    drifty = compare_to_baseline(baseline, runs, 0.10, noise_cv=0.01, drift=0.08, sittings=2)
    assert calm.verdict == "slower" and drifty.verdict == "inconclusive"
    assert drifty.low < calm.low and drifty.high > calm.high
    assert drifty.runs_for[0.20] is None  # drift this large: more runs of one sitting cannot help


def test_accuracy_over_seeds_gets_the_same_treatment():
    base = [98.5, 98.6, 98.4, 98.7, 98.5]
    lower = compare_accuracies(base, [a - 1.0 for a in base], 0.3)
    assert lower.verdict == "less accurate" and lower.high < -0.3
    assert lower.describe().startswith("less accurate −1.00 points [")
    assert compare_accuracies(base, list(base), 0.3).verdict == "ok"
    same = compare_accuracies([98.0] * 4, [98.0] * 4, 0.3)
    assert (same.verdict, same.low, same.high) == ("ok", 0.0, 0.0)
    few = compare_accuracies(base, base[:2], 0.3)
    assert few.verdict == "inconclusive" and "too few seeds" in few.reason


def test_what_it_takes_against_a_baseline_counts_its_fixed_runs_and_drift():
    # Against 5 baseline runs the baseline's own noise stays: more new runs help less.
    assert runs_needed(0.10, 0.05, 0.03, fixed=5) > runs_needed(0.10, 0.05, 0.03)
    assert runs_needed(0.10, 0.05, 0.03, fixed=2) is None  # 2 runs' medians alone blur 5 %
    baseline = replicates(20_000, 0.02, 10, seed=11)
    effect = compare_to_baseline(baseline, [19_000], 0.10, noise_cv=0.02, drift=0.03, sittings=2)
    assert effect.against_baseline and effect.detectable > 0.10
    unknown = compare_to_baseline(baseline, [19_000], 0.10, noise_cv=None, drift=0.03, sittings=2)
    assert unknown.runs_for == {} and unknown.verdict in ("ok", "inconclusive")
