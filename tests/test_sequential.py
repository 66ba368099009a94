"""The sequential A/B rule: seeded simulations of its operating characteristic (the issue's
targets), and its pieces: evidence, confidence sequence, stopping."""

import math
import random

import pytest

from bench.config.settings import AB_MAX_PAIRS
from bench.judge.sequential import (
    MIN_PAIRS,
    confidence_sequence,
    decide,
    e_values,
    look,
    pair_seconds,
    replay,
    simulate,
)
from bench.judge.stats import Verdict

MARGIN = 0.05


def chance_of_slower(slowdown: float, noise: float, interference: float = 0.0, seed: int = 1):
    return simulate(
        slowdown,
        noise,
        margin=MARGIN,
        comparisons=1000,
        max_pairs=AB_MAX_PAIRS,
        interference=interference,
        seed=seed,
    )


@pytest.mark.parametrize(("noise", "interference"), [(0.045, 0.0), (0.06, 0.1), (0.075, 0.1)])
def test_identical_variants_are_called_slower_at_most_five_percent_of_the_time(noise, interference):
    result = chance_of_slower(0.0, noise, interference)
    assert result.shares.get(Verdict.SLOWER, 0) <= 0.05
    assert result.shares.get(Verdict.OK, 0) >= 0.9  # and they mostly end ok, not capped


@pytest.mark.parametrize(("noise", "interference"), [(0.045, 0.0), (0.06, 0.1), (0.075, 0.1)])
def test_a_ten_percent_slowdown_is_caught_at_least_ninety_percent_of_the_time(noise, interference):
    result = chance_of_slower(0.10, noise, interference)
    assert result.shares.get(Verdict.SLOWER, 0) >= 0.9
    assert 2 * result.p90_pairs <= 2 * AB_MAX_PAIRS  # within the cap


def test_a_two_times_slowdown_stops_within_ten_runs():
    result = chance_of_slower(0.5, 0.06, 0.1)
    assert result.shares == {Verdict.SLOWER: 1.0}
    assert 2 * result.p90_pairs <= 10


def test_looking_after_every_pair_with_a_t_test_would_raise_false_alarms():
    """Why the e-value: the same data judged by a one-sided t-test at every look (stop at the
    first p < 0.05) cries wolf far more often than 5 %."""
    from scipy.stats import t

    rng = random.Random(3)
    alarms = 0
    for _ in range(300):
        ratios = []
        for pairs in range(1, AB_MAX_PAIRS + 1):
            ratios.append(rng.gauss(0, 0.06))
            if pairs >= MIN_PAIRS:
                mean = sum(ratios) / pairs
                sd = math.sqrt(sum((r - mean) ** 2 for r in ratios) / (pairs - 1))
                if t.cdf(mean / (sd / math.sqrt(pairs)), pairs - 1) < 0.05:
                    alarms += 1
                    break
    assert alarms / 300 > 0.15


def test_the_evidence_grows_with_a_slowdown_and_falls_without_one():
    slow = [math.log(0.85) + 0.01 * ((-1) ** i) for i in range(8)]
    same = [0.01 * ((-1) ** i) for i in range(10)]
    assert look(slow, MARGIN).evidence > 20 > look(same, MARGIN).evidence
    assert look(same, MARGIN).evidence < 0.05
    # no spread at all: the e-value's finite limit, not infinite evidence
    assert 1 < float(e_values(-math.inf, 5, -1.0)) < 1e6
    assert float(e_values(math.inf, 5, -1.0)) < 1
    assert decide([math.log(0.98)] * 2, MARGIN, last=True).verdict == Verdict.INCONCLUSIVE


@pytest.mark.slow
def test_the_confidence_sequence_covers_the_mean_at_every_look_and_agrees_with_the_test():
    """Each end fails at most α of the time over all looks (90 % for both); the interval
    excludes no change exactly when the test has evidence of a change."""
    rng = random.Random(11)
    missed = 0
    for _ in range(400):
        ratios = []
        for _pairs in range(AB_MAX_PAIRS):
            ratios.append(rng.gauss(-0.03, 0.06))
            low, high = confidence_sequence(ratios, MARGIN)
            if not low <= -0.03 <= high:
                missed += 1
                break
            if len(ratios) >= 2:
                now = look(ratios, MARGIN)
                assert (high < 0) == (now.evidence >= 20)
    assert missed / 400 <= 0.10
    assert confidence_sequence([0.1], MARGIN) == (-math.inf, math.inf)
    assert confidence_sequence([0.1, 0.2], MARGIN) == (-math.inf, math.inf)  # 2 pairs: no bound


def test_decide_waits_for_the_first_look_then_stops_or_goes_on():
    slow = [math.log(0.7), math.log(0.72), math.log(0.69)]
    assert decide(slow, MARGIN, last=False) is None  # fewer than MIN_PAIRS
    effect = decide([*slow, math.log(0.71)], MARGIN, last=False)
    assert effect.verdict == Verdict.SLOWER and effect.runs_a == 4
    assert effect.describe().startswith("slower −29")
    unsure = [0.05, -0.08, 0.02, -0.06]
    assert decide(unsure, MARGIN, last=False) is None
    capped = decide(unsure, MARGIN, last=True, why_last="no verdict within 4 pairs")
    assert capped.verdict == Verdict.INCONCLUSIVE
    assert capped.reason == "no verdict within 4 pairs" and capped.could_miss > 0.05


def test_a_real_change_inside_the_margin_ends_ok_not_slower():
    rng = random.Random(5)
    ratios = [math.log(0.98) + rng.gauss(0, 0.002) for _ in range(12)]
    effect = decide(ratios, MARGIN, last=False)
    assert effect.verdict == Verdict.OK and "less than the 5 % margin" in effect.reason


def test_replay_stops_where_ab_would_and_applies_the_time_cap():
    slow = [math.log(0.7)] * 3 + [math.log(0.72), math.log(0.69), math.log(0.71)]
    effect, used = replay(slow, [20.0] * 6, MARGIN, max_pairs=40, max_time_s=900)
    assert effect.verdict == Verdict.SLOWER and used == 4
    unsure = [0.05, -0.08, 0.02, -0.06, 0.07, -0.05]
    assert replay(unsure, [20.0] * 6, MARGIN, max_pairs=40, max_time_s=900) is None  # ran out
    effect, used = replay(unsure, [100.0] * 6, MARGIN, max_pairs=40, max_time_s=250)
    assert effect.verdict == Verdict.INCONCLUSIVE and used == 2  # a third pair would pass 250 s
    assert "--max-time" in effect.reason
    effect, used = replay(unsure, [1.0] * 6, MARGIN, max_pairs=5, max_time_s=900)
    assert used == 5 and "--max-pairs" in effect.reason


def test_ok_waits_until_the_interval_rules_out_twice_the_margin():
    """No sign of a slowdown is not enough while a large one is still open: the test goes on
    (or, at the cap, says inconclusive) until the interval excludes a 2 × margin slowdown."""
    wide = [0.3, -0.25, 0.28, -0.2, 0.25]  # e is small, but the spread leaves −20 % open
    now = look(wide, MARGIN)
    assert now.evidence <= 0.05 and math.expm1(now.low) < -2 * MARGIN
    assert decide(wide, MARGIN, last=False) is None
    assert decide(wide, MARGIN, last=True).verdict == Verdict.INCONCLUSIVE
    tight = [0.01, -0.01, 0.012, -0.008, 0.0, 0.005, -0.004, 0.002]
    effect = decide(tight, MARGIN, last=False)
    assert effect.verdict == Verdict.OK and effect.low > 1 - 2 * MARGIN


def test_a_pair_lasts_until_the_next_one_starts_and_the_last_as_long_as_the_others():
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 11, 30, tzinfo=UTC)
    starts = [start, start + timedelta(seconds=20), start + timedelta(seconds=60)]
    assert pair_seconds(starts) == [20.0, 40.0, 30.0]
    assert pair_seconds(starts[:1]) == [0.0]
