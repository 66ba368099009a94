"""History and change points, over results built from a real one (tests/data)."""

import copy
import random
from datetime import datetime

import pytest

from bench.judge.history import histories
from bench.storage.baselines import make_baseline
from tests.test_compare import sittings, variant


def commits(template, rates_by_commit, torch_by_commit=None):
    """Runs of seeds 0, 1, … at each commit c0, c1, …, an hour apart, one sitting each."""
    results = []
    for index, rates in enumerate(rates_by_commit):
        for seed, rate in enumerate(rates):
            result = variant(template, seed=seed, rate=rate)
            result.run_id = f"c{index}-s{seed}"
            result.environment.git_commit = f"c{index}" + "0" * 39
            if torch_by_commit:
                result.environment.torch = torch_by_commit[index]
            result.created_utc = f"2026-11-20T{index:02d}:{seed:02d}:00+00:00"
            results.append(result)
    return results


def noisy(rng, level, runs=3, cv=0.02):
    return [level * (1 + rng.gauss(0, cv)) for _ in range(runs)]


@pytest.mark.parametrize("seed", range(3))
def test_a_step_change_is_found_between_the_commits_where_it_happened(template, seed):
    rng = random.Random(seed)
    levels = [10_000] * 5 + [8_500] * 3  # 15 % slower from c5 on
    (history,) = histories(commits(template, [noisy(rng, level) for level in levels]), [], 10.0)
    assert len(history.sittings) == 8
    (change,) = history.change_points
    assert change.first_sitting == 5
    assert change.commits == "between c400000 and c500000"
    assert change.change_pct == pytest.approx(-15, abs=3)
    assert change.describe().startswith(f"{change.change_pct:+.1f} % (")


def test_a_flat_history_and_a_step_within_the_margin_have_no_change_point(template):
    rng = random.Random(0)
    flat = [noisy(rng, 10_000) for _ in range(8)]
    within = [noisy(rng, 10_000) for _ in range(4)] + [noisy(rng, 9_600) for _ in range(4)]
    for rates in (flat, within):
        (history,) = histories(commits(template, rates), [], 10.0)
        assert history.change_points == []
    # The same 4 % step is a change against a 2 % margin.
    (history,) = histories(commits(template, within), [], 2.0)
    assert [c.first_sitting for c in history.change_points] == [4]


def test_a_change_with_the_torch_version_names_both(template):
    rates = [[10_000, 10_100, 9_900]] * 3 + [[12_000, 12_100, 11_900]] * 3
    torch = ["2.14.1"] * 3 + ["2.15.0"] * 3
    (history,) = histories(commits(template, rates, torch), [], 10.0)
    (change,) = history.change_points
    assert change.commits == "between c200000 and c300000, torch 2.14.1 → 2.15.0"
    assert change.change_pct == pytest.approx(20)
    assert history.sittings[3].label == "c300000 · torch 2.15.0 · 2026-11-20"


def test_the_baselines_runs_join_the_history_in_time_order(template):
    recorded = sittings(template, [[10_000, 10_100, 9_900], [10_300] * 3])
    for result in recorded:  # ids as `run` makes them: the start time first
        started = datetime.fromisoformat(result.created_utc)
        result.run_id = f"{started:%Y%m%dT%H%M%SZ}-{result.run_id}"
    baseline = make_baseline(recorded)
    new = commits(template, [[10_050, 10_000, 9_950]])
    for result in new:
        result.created_utc = result.created_utc.replace("2026-11-20", "2026-11-25")
    (history,) = histories([*new, *recorded[:3]], [baseline], 10.0)
    # The baseline's first sitting is among the results (the same run ids): counted once.
    assert [s.source for s in history.sittings] == ["results", "baseline", "results"]
    assert [len(s.runs) for s in history.sittings] == [3, 3, 3]
    assert history.baseline == baseline.name
    assert history.baseline_median_images_per_s == pytest.approx(10_200)
    assert history.baseline_drift == baseline.drift


def test_a_baseline_without_results_is_a_history_of_its_own(template):
    baseline = make_baseline(sittings(template, [[10_000] * 3, [10_300] * 3]))
    other = copy.deepcopy(template)
    other.environment.device_name = "Another CPU"
    (mine, theirs) = histories([variant(other)], [baseline], 10.0)
    assert mine.baseline is None and len(mine.sittings) == 1
    assert theirs.label == baseline.name and len(theirs.sittings) == 2


def test_a_single_fresh_run_far_off_is_a_change_at_its_own_sitting(template):
    rates = [[10_000, 10_100, 9_900], [10_050, 9_950, 10_000], [6_000]]
    (history,) = histories(commits(template, rates), [], 10.0)
    (change,) = history.change_points
    # PELT needs two runs a side; the change is placed where the sittings meet.
    assert change.first_sitting == 2 and change.first_run_after.run_id == "c2-s0"
    assert (change.before_images_per_s, change.after_images_per_s) == (10_000, 6_000)


def test_one_sitting_has_no_change_point_even_with_a_step_inside(template):
    rates = [10_000, 10_100, 9_900, 10_050, 6_000, 6_100, 5_900, 6_050]
    (history,) = histories(commits(template, [rates]), [], 10.0)
    assert len(history.sittings) == 1 and history.change_points == []
