"""Speed verdicts from run-level replicates: effect, interval, test, and what more runs buy."""

import random

import pytest

from bench.judge.stats import compare_speeds, detectable_slowdown, runs_needed


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
