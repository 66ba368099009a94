"""History and change points, over results built from a real one (tests/data)."""

import copy
import random
from datetime import datetime

import pytest

from bench.judge.history import histories, latest_sittings
from bench.judge.steps import best_found_in_place, simulate
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
    assert change.first_sitting == 2 and change.first_run_after.run_id == "c2-s0"
    assert change.before_images_per_s == pytest.approx(10_000)
    assert change.after_images_per_s == pytest.approx(6_000)


def test_one_sitting_has_no_change_point_even_with_a_step_inside(template):
    rates = [10_000, 10_100, 9_900, 10_050, 6_000, 6_100, 5_900, 6_050]
    (history,) = histories(commits(template, [rates]), [], 10.0)
    assert len(history.sittings) == 1 and history.change_points == []
    assert history.why_not_judged == "one sitting: no change between sittings can be placed"


def test_a_step_within_one_commit_is_the_machine_not_the_code(template):
    rates = [[10_000, 10_100, 9_900]] * 4 + [[12_500, 12_400, 12_600]] * 4
    results = commits(template, rates)
    for result in results:
        result.environment.git_commit = "c" * 40  # one commit throughout
    (history,) = histories(results, [], 10.0)
    (change,) = history.change_points
    assert not change.code_changed
    assert change.commits == "at ccccccc throughout: the machine changed, not the code"


def test_drift_between_sittings_is_not_a_change(template):
    """Sitting levels that scatter by 8 % with no code change, each sitting's runs tight
    (1 %): the run-to-run noise alone would call most of these moves changes."""
    levels = [10_000, 10_900, 9_300, 10_100, 11_000, 9_200, 10_600, 9_500, 10_400, 9_800]
    rates = [[level * (1 + 0.01 * k) for k in (-1, 0, 1)] for level in levels]
    (history,) = histories(commits(template, rates), [], 10.0)
    assert history.change_points == []
    assert history.drift_cv == pytest.approx(0.06, abs=0.02)


@pytest.mark.parametrize(
    "order", ["reversed", "shuffled", "same instant", "months apart", "one run a sitting"]
)
def test_odd_histories_are_judged_in_time_order(template, order):
    """Runs given out of time order, sharing instants, months apart, or one per sitting: the
    sittings come out in time order and the 15 % step is found where it is."""
    rng = random.Random(1)
    runs = 1 if order == "one run a sitting" else 3
    levels = [10_000] * 6 + [8_500] * 6
    results = commits(template, [noisy(rng, level, runs=runs) for level in levels])
    if order == "reversed":
        results.reverse()
    elif order == "shuffled":
        rng.shuffle(results)
    elif order == "same instant":
        for result in results:
            result.created_utc = result.created_utc[:14] + "00:00+00:00"
    elif order == "months apart":
        for result in results:
            month = 1 + int(result.run_id.split("-")[0][1:])  # c0-s0 … c11-s2
            result.created_utc = f"2026-{month:02d}" + result.created_utc[7:]
    (history,) = histories(results, [], 10.0)
    starts = [sitting.runs[0].started_utc for sitting in history.sittings]
    assert starts == sorted(starts) and len(history.sittings) == 12
    assert [change.first_sitting for change in history.change_points] == [6]


def test_two_sittings_cannot_tell_a_change_from_drift(template):
    (history,) = histories(commits(template, [[10_000] * 3, [7_000] * 3]), [], 10.0)
    assert history.change_points == []
    assert "2 sittings: at least 3" in history.why_not_judged


def test_the_latest_sitting_of_each_group_and_what_it_left_out(template):
    results = [(None, result) for result in sittings(template, [[10_000] * 3] * 4)]
    other = copy.deepcopy(template)
    other.environment.device_name = "Another CPU"
    results.append((None, variant(other)))
    kept, left_out = latest_sittings(results)
    assert [result.run_id for _, result in kept] == [r.run_id for _, r in results[9:]]
    assert (left_out.runs, left_out.sittings) == (9, 3)
    assert left_out.describe() == "9 runs in 3 earlier sittings left out"


# The finder's operating characteristics (bench.judge.steps.simulate), as the README's table
# gives them from scripts/history.py oc: seeded, 300 histories a cell.
HISTORIES = 300


@pytest.mark.parametrize("drift", [0.03, 0.08])
@pytest.mark.parametrize("sittings_count, runs", [(8, 3), (12, 5)])
@pytest.mark.parametrize("run_noise", [0.015, 0.045])
def test_drift_alone_gives_a_false_change_in_at_most_one_history_in_ten(
    sittings_count, runs, drift, run_noise
):
    found = simulate(
        sittings_count, runs, drift=drift, run_noise=run_noise, margin=0.10, histories=HISTORIES
    )
    assert found.any_change <= 0.10


@pytest.mark.parametrize(
    "sittings_count, runs, step, at_least",
    [
        (12, 5, 0.30, 0.98),
        (24, 3, 0.30, 0.98),
        (8, 3, 0.30, 0.90),
        # A 15 % step is twice the drift: a neighbouring sitting that drifted as far blurs its
        # place, so it takes a history of weeks (48 sittings) to place it in 80 %.
        (48, 3, 0.15, 0.80),
        (24, 3, 0.15, 0.70),
    ],
)
def test_a_real_step_under_8_percent_drift_is_found_where_it_is(
    sittings_count, runs, step, at_least
):
    found = simulate(
        sittings_count,
        runs,
        drift=0.08,
        run_noise=0.03,
        step=step,
        step_at=0.7,
        margin=0.10,
        histories=HISTORIES,
    )
    assert found.found_in_place >= at_least


@pytest.mark.parametrize(
    "sittings_count, runs, step", [(8, 3, 0.15), (12, 5, 0.15), (8, 3, 0.30), (24, 3, 0.15)]
)
def test_the_finder_places_a_step_nearly_as_often_as_the_best_test_for_one_step(
    sittings_count, runs, step
):
    """The best test, set to the finder's own rate of false changes, knows there is at most
    one step; the finder, which does not, places it as often (within 4 points)."""
    noise = {"drift": 0.08, "run_noise": 0.03, "margin": 0.10, "histories": 1000}
    false_changes = simulate(sittings_count, runs, **noise).any_change
    found = simulate(sittings_count, runs, **noise, step=step, step_at=0.7).found_in_place
    best = best_found_in_place(
        sittings_count, runs, **noise | {"histories": 5000}, step=step, step_at=0.7,
        drift_known=False, false_changes=false_changes,
    )  # fmt: skip
    assert best - 0.04 <= found <= best + 0.04


@pytest.mark.parametrize("sittings_count, runs", [(8, 3), (12, 5)])
def test_no_finder_places_a_15_percent_step_under_8_percent_drift_in_4_of_5_short_histories(
    sittings_count, runs
):
    """Even knowing the drift exactly, the best test for one step that keeps false changes to
    10 % places a 15 % step at 70 % of 8 or 12 sittings in at most about 3 histories of 4:
    the README's target of 80 % there is beyond any finder; a 30 % step it places."""
    stepped = {"drift": 0.08, "run_noise": 0.015, "step_at": 0.7, "margin": 0.10}
    known = {"histories": 20_000, "drift_known": True}
    assert best_found_in_place(sittings_count, runs, step=0.15, **stepped, **known) < 0.76
    assert best_found_in_place(sittings_count, runs, step=0.30, **stepped, **known) > 0.98


def test_a_run_is_placed_by_its_recorded_time_not_a_time_its_id_claims(template):
    """Run ids whose leading times run backwards (or lie near year 1) against the results'
    times: the history, as its sittings, goes by the recorded time, so a slowdown reads as
    one."""
    results = sittings(template, [[10_000] * 3] * 4 + [[5_000] * 3] * 3)
    for number, result in enumerate(results):
        result.run_id = f"{2030 - number:04d}0101T000000Z-{result.run_id}"
    results[0].run_id = "00010101T000000Z-" + results[0].run_id[17:]
    (history,) = histories(results, [], 10.0)
    (change,) = history.change_points
    assert change.first_sitting == 4 and change.change_pct == pytest.approx(-50, abs=1)
