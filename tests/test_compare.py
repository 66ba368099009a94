import copy
import csv
import dataclasses
import io
import json
import statistics

import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.config.options import ComparisonRequest
from bench.config.settings import Tolerances
from bench.jobs import compare_paths
from bench.judge.compare import compare
from bench.show.tables import to_csv, to_json
from bench.storage.baselines import load_baselines, make_baseline, save_baseline
from bench.storage.experiment import hardware_of
from bench.storage.files import collect, load_result, save_result, save_sweep
from bench.storage.results import RunResult
from mnist_core import state_dict_digest
from tests.conftest import COMMITTED_CUDA_RESULT, REPO_ROOT, edited, renumbered

runner = CliRunner(env={"COLUMNS": "250"})


def variant(
    template: RunResult,
    seed=0,
    rate=10_000.0,
    accuracy=98.0,
    digest=None,
    device_type="cpu",
    device_name=None,
    **config,
) -> RunResult:
    """`template` as another run: its seed, rate, accuracy, digest, device and config fields;
    what must agree with them (epochs' figures, determinism, ranks) changed along."""
    changes = {f"config.{key}": value for key, value in config.items()} | {
        "run_id": f"{device_type}-s{seed}-{rate:.0f}-{accuracy}",
        "config.seed": seed,
        "config.device": "cpu" if device_type == "cpu" else "cuda:0",
        "summary.steady_train_images_per_s": rate,
        "summary.final_test_accuracy_pct": accuracy,
        "weights_sha256": digest or f"digest-{seed}",
        "environment.device_type": device_type,
        "environment.device_name": device_name or template.environment.device_name,
    }
    if "epochs" in config:
        changes["epochs"] = renumbered(template.epochs, config["epochs"])
    if not config.get("deterministic", True):
        changes |= {"arithmetic.determinism": "off", "arithmetic.bitwise_reruns": False}
    if config.get("world_size", 1) > 1:
        changes["distributed"] = two_ranks(rate, digest or f"digest-{seed}", template)
    return edited(template, changes)


def two_ranks(rate: float, digest: str, template: RunResult) -> dict:
    """A strong-scaling data-parallel run's figures over two ranks of one host."""
    return {
        "world_size": 2,
        "nodes": 1,
        "backend": "gloo",
        "scaling": "strong",
        "global_batch_size": template.config.batch_size,
        "per_rank_batch_size": template.config.batch_size // 2,
        "global_train_images_per_s": rate,
        "ranks": [
            {
                "rank": rank,
                "host": "h",
                "device": "cpu",
                "train_images_per_s": rate / 2,
                "weights_sha256": digest,
            }
            for rank in (0, 1)
        ],
        "weights_identical": True,
    }


def save_weights_of(result, weights, path):
    """`weights` saved as `result`'s weights file, their digest recorded as a run records it."""
    torch.save(weights, path)
    result.weights_file, result.weights_sha256 = path.name, state_dict_digest(weights)


def write(results, folder):
    return [save_result(r, folder) for r in results]


def verdicts(template, baseline_runs, run):
    baseline = make_baseline(baseline_runs)
    (row,) = compare([(None, run)], [baseline], Tolerances()).rows
    return row


def sittings(template, rates_by_sitting, accuracy=98.0):
    """Results of seeds 0, 1, … in each sitting (a `run --repeat` group), minutes apart."""
    results = []
    for sitting, rates in enumerate(rates_by_sitting):
        for seed, rate in enumerate(rates):
            result = variant(template, seed=seed, rate=rate, accuracy=accuracy + 0.1 * seed)
            result.run_id += f"-g{sitting}"
            result.group, result.replicate = f"g{sitting}", seed + 1
            result.created_utc = f"2026-11-2{sitting}T10:{seed:02d}:00+00:00"
            results.append(result)
    return results


@pytest.fixture
def seeds(template):
    return [
        variant(template, seed=s, rate=10_000 + 100 * s, accuracy=98.0 + 0.1 * s) for s in range(3)
    ]


@pytest.fixture
def two_sittings(template):
    """Five seeds in each of two sittings, the second 3 % faster: 1 % noise, 2 % drift."""
    first = [10_000, 10_100, 9_900, 10_050, 9_950]
    return make_baseline(sittings(template, [first, [1.03 * rate for rate in first]]))


def judged(template, baseline, runs, **tolerances):
    comparison = compare([(None, r) for r in runs], [baseline], Tolerances(**tolerances))
    (group,) = comparison.verdicts
    return comparison, group


@pytest.mark.slow
def test_a_rerun_of_a_seed_is_checked_against_that_seed(template, seeds):
    row = verdicts(template, seeds, variant(template, seed=1, rate=9_500, accuracy=97.9))
    assert row.verdicts == ["ok"]
    typical = statistics.geometric_mean([10_000, 10_100, 10_200])  # the baseline's seeds
    assert row.throughput_delta_pct == pytest.approx(100 * (9_500 / typical - 1))
    assert row.accuracy_delta_points == pytest.approx(-0.2)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"accuracy": 97.5}, ["less accurate"]),
        ({"digest": "something else"}, ["different weights"]),
        ({"digest": "x", "accuracy": 90, "rate": 1}, ["different weights", "less accurate"]),
        ({"seed": 9}, ["seed not in baseline"]),
    ],
)
def test_run_verdicts_against_the_same_seed(template, seeds, change, expected):
    run = variant(template, **{"seed": 1, "rate": 10_100, "accuracy": 98.1} | change)
    assert verdicts(template, seeds, run).verdicts == expected


def test_nondeterministic_runs_are_not_judged_on_weights(template):
    seeds = [
        variant(
            template, seed=s, rate=10_000 + 100 * s, accuracy=98.0 + 0.1 * s, deterministic=False
        )
        for s in range(3)
    ]
    run = variant(template, seed=1, rate=10_100, accuracy=98.1, digest="other", deterministic=False)
    row = verdicts(template, seeds, run)
    assert row.verdict_text == "ok, not bitwise comparable: determinism off"


def test_warn_only_determinism_is_not_judged_on_weights(template, seeds):
    # e.g. MPS: determinism asked for, but a kernel had no deterministic version.
    run = variant(template, seed=1, rate=10_100, accuracy=98.1, digest="other")
    run.arithmetic = dataclasses.replace(
        run.arithmetic, determinism="warn-only", bitwise_reruns=False
    )
    row = verdicts(template, seeds, run)
    assert row.verdict_text == "ok, not bitwise comparable: determinism warn-only"


def test_no_baseline_says_which_part_of_the_key_differs(template, seeds):
    row = verdicts(template, seeds, variant(template, seed=1, epochs=7))
    assert row.verdicts == ["no baseline"] and "epochs 7≠2" in row.why_no_baseline
    row = verdicts(template, seeds, variant(template, seed=1, device_name="Other CPU"))
    assert "device 'Other CPU'" in row.why_no_baseline
    (row,) = compare([(None, seeds[0])], [], Tolerances()).rows
    assert row.why_no_baseline == "none recorded"


def test_a_baseline_records_its_sittings_noise_and_drift(two_sittings):
    assert two_sittings.sittings == 2 and len(two_sittings.runs) == 10
    assert two_sittings.noise_cv == pytest.approx(0.0079, abs=0.001)
    assert two_sittings.drift == pytest.approx(0.03 / 1.015 / 2**0.5, rel=0.01)


def test_ungrouped_runs_are_one_sitting_until_a_pause(template):
    runs = sittings(template, [[10_000] * 3, [10_300] * 3])
    for result in runs:
        result.group = None
    assert make_baseline(runs).sittings == 2  # a day apart
    for result in runs:
        result.created_utc = result.created_utc.replace("2026-11-21", "2026-11-20")
    assert make_baseline(runs).sittings == 1  # one minute apart


def test_a_seed_with_two_digests_is_no_baseline(template):
    from bench.errors import BaselineError

    runs = sittings(template, [[10_000] * 2, [10_000] * 2])
    runs[2].weights_sha256 = "changed"
    with pytest.raises(BaselineError, match="seed 0 gave different weights"):
        make_baseline(runs)


@pytest.mark.parametrize(("scale", "verdict"), [(0.5, "slower"), (1.6, "faster")])
def test_a_clearly_different_single_run_gets_its_verdict(template, two_sittings, scale, verdict):
    run = variant(template, seed=1, rate=10_150 * scale, accuracy=98.1)
    comparison, group = judged(template, two_sittings, [run])
    assert group.speed.verdict == verdict
    assert group.speed.low <= group.speed.ratio <= group.speed.high
    assert "drift" in group.speed.describe()
    assert bool(comparison.regressions) == (verdict == "slower")


def test_a_single_run_equal_to_the_baseline_is_not_slower_nor_ok_by_default(template, two_sittings):
    run = variant(template, seed=1, rate=10_150, accuracy=98.1)
    comparison, group = judged(template, two_sittings, [run])
    assert group.speed.verdict in ("ok", "inconclusive") and not comparison.regressions
    assert group.accuracy.verdict == "ok"  # judged seed by seed


def test_a_group_of_runs_gets_effect_interval_and_test(template, two_sittings):
    slower = [variant(template, seed=s, rate=r, accuracy=98.0 + 0.1 * s)
              for s, r in enumerate([8_000, 8_080, 7_950, 8_020, 7_990])]  # fmt: skip
    comparison, group = judged(template, two_sittings, slower)
    assert group.speed.verdict == "slower" and comparison.regressions
    assert group.speed.high < 1 and group.speed.ratio < 0.8
    assert "5 vs 10 baseline runs" in group.speed.describe()
    same = [variant(template, seed=s, rate=r, accuracy=98.0 + 0.1 * s)
            for s, r in enumerate([10_150, 10_050, 10_250, 10_100, 10_200])]  # fmt: skip
    comparison, group = judged(template, two_sittings, same)
    # Two sittings measure the drift roughly: the assumed 8 % still weighs in, and keeps
    # identical runs from being called ok at a 10 % margin (but never slower).
    assert group.speed.verdict == "inconclusive" and not comparison.regressions
    comparison, group = judged(template, two_sittings, same, assumed_drift_pct=1.0)
    assert group.speed.verdict == "ok" and comparison.why_cannot_judge is None
    assert comparison.undecided is None


def test_accuracy_is_judged_over_seeds(template, two_sittings):
    worse = [variant(template, seed=s, rate=10_100, accuracy=97.0 + 0.1 * s) for s in range(5)]
    comparison, group = judged(template, two_sittings, worse)
    assert group.accuracy.verdict == "less accurate" and comparison.regressions
    assert group.accuracy.describe().startswith("less accurate −1.00 points [")


def test_a_baseline_of_one_sitting_judges_speed_with_the_assumed_drift(template, seeds):
    run = variant(template, seed=1, rate=5_000, accuracy=98.1)
    run.created_utc = "2027-01-01T12:00:00+00:00"  # another day: another sitting
    comparison, group = judged(template, make_baseline(seeds), [run])
    assert group.speed.verdict == "slower" and "partly assumed" in group.speed.reason
    assert comparison.regressions and comparison.why_cannot_judge is None
    same = variant(template, seed=1, rate=10_050, accuracy=98.1)
    same.created_utc = run.created_utc
    comparison, group = judged(template, make_baseline(seeds), [same])
    assert group.speed.verdict == "inconclusive" and not comparison.regressions
    assert "could have missed a slowdown of up to" in comparison.undecided
    (exported,) = json.loads(to_json(comparison))["verdicts"]
    assert exported["speed"]["verdict"] == "inconclusive" and exported["speed"]["drift"] > 0


def test_runs_taken_in_the_baselines_sitting_are_judged_without_drift(template):
    """Runs interleaved in time with the baseline's: the same sitting, no drift term, so
    identical runs are `ok` at the default margin, and a 2× slower copy `slower`."""
    base = sittings(template, [[10_000, 10_100, 9_900, 10_050, 9_950]])
    baseline = make_baseline(base)
    again = copy.deepcopy(base)
    for result in again:
        result.run_id += "-again"
        result.group = None
        result.created_utc = result.created_utc.replace(":00+", ":30+")
    comparison, group = judged(template, baseline, again)
    assert group.speed.drift == 0 and group.speed.verdict == "ok", group.speed.describe()
    for result in again:
        result.summary.steady_train_images_per_s /= 2
    comparison, group = judged(template, baseline, again)
    assert group.speed.verdict == "slower"


def test_runs_are_judged_by_the_baselines_estimator(template, two_sittings):
    from bench.storage.throughput import estimate

    run = variant(template, seed=1, rate=5_000, accuracy=98.1)
    run.summary.estimator = "block-p90"  # not the baseline's
    (row,) = compare([(None, run)], [two_sittings], Tolerances()).rows
    again = estimate(run.epochs, two_sittings.estimator)  # from the run's stored samples
    typical = statistics.geometric_mean(r.steady_train_images_per_s for r in two_sittings.runs)
    assert row.throughput_delta_pct == pytest.approx(100 * (again / typical - 1))
    for epoch in run.epochs:
        epoch.block_images_per_s = []
    two_sittings.estimator = "block-trimmed-mean-20"
    _, group = judged(template, two_sittings, [run])
    assert group.speed is None and "no blocks" in group.why_no_speed


def test_seeds_are_summarised_and_cuda_speedup_shown(template, seeds):
    gpu = [
        variant(template, seed=s, rate=50_000, device_type="cuda", device_name="Some GPU")
        for s in range(2)
    ]
    comparison = compare([(None, r) for r in seeds + gpu], [], Tolerances())
    cpu_group, gpu_group = sorted(comparison.groups, key=lambda g: g.device_type)
    assert cpu_group.runs == 3 and cpu_group.seeds == [0, 1, 2]
    assert cpu_group.train_images_per_s.mean == pytest.approx(10_100)
    assert cpu_group.train_images_per_s.std == pytest.approx(100)
    assert (cpu_group.accuracy_pct.min, cpu_group.accuracy_pct.max) == (98.0, 98.2)
    cpu_geomean = statistics.geometric_mean([10_000, 10_100, 10_200])
    assert gpu_group.speedup_vs_cpu == pytest.approx(50_000 / cpu_geomean)
    assert {(x.seed, x.other_device) for x in comparison.cross_device} == {
        (0, "Some GPU"),
        (1, "Some GPU"),
    }


def cuda_twin(cpu: RunResult, rate: float) -> RunResult:
    """`cpu`'s experiment as a CUDA run records it: CUDA's own defaults, CUDA's fingerprint."""
    from bench.config.resolve import for_device

    unresolved = dataclasses.replace(cpu.config, channels_last=None, optimizer=None)
    return edited(
        cpu,
        {
            "config": for_device(unresolved, "cuda:0"),
            "run_id": f"cuda-{cpu.run_id}",
            "environment.device_type": "cuda",
            "environment.device_name": "NVIDIA H100 80GB HBM3",
            "environment.threads": 16,
            "summary.steady_train_images_per_s": rate,
        },
    )


def test_a_cpu_and_a_cuda_run_of_one_seed_are_one_experiment(template, tmp_path):
    cpu = variant(template, seed=0, rate=10_000)
    cuda = cuda_twin(cpu, rate=250_000)
    assert cpu.config.channels_last and not cuda.config.channels_last  # per-device defaults
    save_weights_of(cpu, {"w": torch.tensor([3.0, 4.0])}, tmp_path / "cpu-weights.pt")
    save_weights_of(cuda, {"w": torch.tensor([3.0, 4.0 + 1e-3])}, tmp_path / "cuda-weights.pt")
    write([cpu, cuda], tmp_path)

    comparison = compare_paths([tmp_path], ComparisonRequest(baseline=tmp_path))
    cuda_group = next(g for g in comparison.groups if g.device_type == "cuda")
    assert cuda_group.speedup_vs_cpu == pytest.approx(25.0)
    (pair,) = comparison.cross_device
    assert (pair.cpu_run, pair.other_run, pair.seed) == (cpu.run_id, cuda.run_id, 0)
    assert pair.relative_l2 == pytest.approx(1e-3 / 5.0, rel=1e-3)

    shown = runner.invoke(app, ["compare", str(tmp_path), "--baseline", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "25.00×" in shown.output and "Same experiment and seed across devices" in shown.output


def test_cpu_runs_with_other_threads_are_not_pooled_as_seeds(template):
    two = [variant(template, seed=s) for s in range(2)]
    one = copy.deepcopy(two[1])
    one.environment.threads = 1
    comparison = compare([(None, r) for r in [*two, one]], [], Tolerances())
    assert sorted(g.runs for g in comparison.groups) == [1, 2]


def test_default_baseline_names_differ_with_world_size_and_threads(template):
    from bench.storage.experiment import default_name

    single = variant(template)
    ranks = variant(template, world_size=2)
    threads = copy.deepcopy(single)
    threads.environment.threads = 1
    assert len({default_name(r) for r in (single, ranks, threads)}) == 3


def test_cross_device_relative_l2_from_saved_weights(template, tmp_path):
    cpu = variant(template, seed=0)
    gpu = variant(template, seed=0, device_type="cuda", device_name="Some GPU")
    save_weights_of(cpu, {"w": torch.tensor([3.0, 4.0])}, tmp_path / "cpu-weights.pt")
    save_weights_of(gpu, {"w": torch.tensor([3.0, 4.5])}, tmp_path / "gpu-weights.pt")
    paths = write([cpu, gpu], tmp_path)
    comparison = compare(list(zip(paths, [cpu, gpu], strict=True)), [], Tolerances())
    (pair,) = comparison.cross_device
    assert pair.relative_l2 == pytest.approx(0.5 / 5.0)


def test_baseline_save_refuses_overwrite_and_mixed_configs(template, seeds, tmp_path):
    paths = write(seeds, tmp_path / "runs")
    args = ["baseline", "save", *map(str, paths), "--dir", str(tmp_path / "b"), "--name", "x"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "seeds 0, 1, 2" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    (baseline,), problems = load_baselines(tmp_path / "b")
    assert not problems and [r.seed for r in baseline.runs] == [0, 1, 2]
    mixed = write([variant(template, seed=5, batch_size=50)], tmp_path / "other")
    refused = runner.invoke(
        app, ["baseline", "save", str(paths[0]), str(mixed[0]), "--dir", str(tmp_path / "c")]
    )
    assert refused.exit_code == 2 and "batch_size 50≠100" in refused.output
    assert not (tmp_path / "c").exists()


def test_compare_cli_flags_a_regression_only_when_asked(template, two_sittings, tmp_path):
    save_baseline(two_sittings, tmp_path / "baselines")
    write([variant(template, seed=0, rate=5_000, accuracy=98.0)], tmp_path / "runs")
    args = ["compare", str(tmp_path / "runs"), "--baseline", str(tmp_path / "baselines")]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0 and "slower −50" in shown.output
    assert "Against the baselines" in shown.output and "drift" in shown.output
    flagged = runner.invoke(app, [*args, "--fail-on-regression"])
    assert flagged.exit_code == 1 and "regression: speed of" in flagged.output
    write([variant(template, seed=0, rate=10_150, accuracy=98.0)], tmp_path / "same")
    same = ["compare", str(tmp_path / "same"), "--baseline", str(tmp_path / "baselines")]
    unsure = runner.invoke(app, [*same, "--fail-on-regression"])
    assert unsure.exit_code == 0, unsure.output  # inconclusive is no evidence of a regression
    assert "could have missed a slowdown of up to" in unsure.output
    strict = runner.invoke(app, [*same, "--fail-on-regression", "--strict"])
    assert strict.exit_code == 2 and "inconclusive (--strict): speed of" in strict.output
    # two sittings: the drift is partly assumed, and the failure says why that is expected
    assert "expected here: the baseline has fewer than 3 sittings" in strict.output


def test_results_folder_with_the_harness_other_documents_compares_runs_only(
    template, seeds, tmp_path
):
    write(seeds, tmp_path)
    save_baseline(make_baseline(seeds), tmp_path / "baselines")
    save_sweep([{"batch_size": 100, "train_images_per_s": 1.0}], tmp_path / "sweep-x.json")
    export = {"machine_info": {}, "commit_info": {}, "benchmarks": [], "version": "5.1.0"}
    (tmp_path / "benchmarks-x.json").write_text(json.dumps(export))  # pytest-benchmark's
    results, problems = collect([tmp_path])
    assert len(results) == 3 and problems == []
    shown = runner.invoke(
        app,
        ["compare", str(tmp_path), "--baseline", str(tmp_path / "baselines"), "--format", "json"],
    )
    assert shown.exit_code == 0
    payload = json.loads(shown.output)
    assert [run["verdict"] for run in payload["runs"]] == ["ok", "ok", "ok"]
    assert payload["verdicts"] == []  # the baseline's own runs are no evidence against it
    assert payload["problems"] == []


def test_bad_files_are_listed_and_the_rest_compared(template, seeds, tmp_path):
    write(seeds[:1], tmp_path)
    (tmp_path / "notjson.json").write_text("{nope")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    future = seeds[0].to_dict() | {"schema_version": 99}
    (tmp_path / "future.json").write_text(json.dumps(future))
    missing = seeds[0].to_dict()
    del missing["summary"]["final_test_accuracy_pct"]
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    (tmp_path / "none").mkdir()
    shown = runner.invoke(app, ["compare", str(tmp_path), "--baseline", str(tmp_path / "none")])
    assert shown.exit_code == 0
    output = " ".join(shown.output.split())
    assert "notjson.json: not strict JSON" in output
    assert "other.json: schema version None" in output
    assert "future.json: schema version 99" in output
    assert "missing.json: summary.final_test_accuracy_pct: Field required" in output


def test_nothing_usable_exits_2_and_empty_folder_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(
        app, ["compare", str(tmp_path / "empty"), "--baseline", str(tmp_path / "empty")]
    )
    assert empty.exit_code == 2 and "no usable results" in empty.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text("[]")
    bad = runner.invoke(
        app, ["compare", str(tmp_path / "bad"), "--baseline", str(tmp_path / "empty")]
    )
    assert bad.exit_code == 2 and "x.json" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json"])
def test_machine_and_paper_formats(template, seeds, tmp_path, fmt):
    write(seeds, tmp_path)
    (tmp_path / "none").mkdir()
    shown = runner.invoke(
        app, ["compare", str(tmp_path), "--format", fmt, "--baseline", str(tmp_path / "none")]
    )
    assert shown.exit_code == 0, shown.output
    if fmt == "markdown":
        assert "| run | device |" in shown.output and "### Groups" in shown.output
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(shown.output)))
        assert [int(r["seed"]) for r in rows] == [0, 1, 2]
        assert float(rows[2]["train_images_per_s"]) == 10_200
    else:
        payload = json.loads(shown.output)
        assert len(payload["runs"]) == 3 and payload["regressions"] == []


def test_plot_is_written(template, seeds, tmp_path):
    write(seeds, tmp_path / "runs")
    shown = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "runs"),
            "--plot",
            str(tmp_path / "cmp.png"),
            "--baseline",
            str(tmp_path / "runs"),
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


def test_the_baselines_own_runs_are_no_evidence_against_it(template, two_sittings):
    own = sittings(template, [[10_000, 10_100, 9_900, 10_050, 9_950]])  # sitting 0's runs
    slower = variant(template, seed=1, rate=6_000, accuracy=98.1)
    comparison = compare([(None, r) for r in [*own, slower]], [two_sittings], Tolerances())
    (group,) = comparison.verdicts
    assert group.speed.runs_b == 1 and group.speed.verdict == "slower"
    assert len(comparison.rows) == 6  # still listed, run by run


def test_interleaved_groups_stay_one_sitting_each(template):
    runs = sittings(template, [[10_000] * 2, [10_300] * 2])
    runs[1].created_utc, runs[2].created_utc = runs[2].created_utc, runs[1].created_utc
    assert make_baseline(runs).sittings == 2


def test_an_unknown_estimator_is_refused_on_load(template, tmp_path):
    document = template.to_dict()
    document["summary"]["estimator"] = "the best of three"
    (tmp_path / "x.json").write_text(json.dumps(document))
    results, problems = collect([tmp_path])
    assert not results and "unknown estimator 'the best of three'" in problems[0][1]


def test_committed_baselines_judge_a_run_of_their_machine_like_their_own_seeds(template):
    """results/baselines/ holds this project's machines (fingerprinted; a CPU and an H200): a
    run of the same experiment, implementation and machine with a baseline seed's figures is
    `ok` and judged for speed, never another machine's verdict."""
    baselines, problems = load_baselines(REPO_ROOT / "results" / "baselines")
    assert problems == [] and len(baselines) >= 4
    templates = {"cpu": template, "cuda": load_result(COMMITTED_CUDA_RESULT)}
    assert {baseline.hardware.device_type for baseline in baselines} == set(templates)
    for baseline in baselines:
        assert {run.seed for run in baseline.runs} == {0, 1, 2, 3, 4}
        assert baseline.identity.machine_known and baseline.assumed_drift > 0
        figures = baseline.runs[1]
        run = edited(
            templates[baseline.hardware.device_type],
            {
                "config": dataclasses.replace(baseline.config, seed=figures.seed),
                "epochs": renumbered(template.epochs, baseline.config.epochs),
                "environment.device_name": baseline.hardware.device_name,
                "environment.cpu_name": baseline.hardware.cpu_name,
                "environment.threads": baseline.hardware.threads,
                "data.sha256": baseline.data_sha256,
                "summary.estimator": baseline.estimator,
                "summary.steady_train_images_per_s": figures.steady_train_images_per_s,
                "summary.final_test_accuracy_pct": figures.final_test_accuracy_pct,
                "weights_sha256": figures.weights_sha256,
                "created_utc": "2027-01-01T00:00:00+00:00",
            },
        )
        assert hardware_of(run.environment) == baseline.hardware  # the template's machine
        comparison = compare([(None, run)], baselines, Tolerances())
        (row,) = comparison.rows
        assert (row.baseline, row.verdicts[0]) == (baseline.name, "ok")
        (group,) = comparison.verdicts
        assert group.speed is not None and not comparison.regressions


def test_two_machines_under_one_label_each_get_their_own_baselines_verdict(template):
    """CPUs that differ only in stepping print alike ("AMD EPYC"), yet are two machines: each
    group's verdict (table, CSV) is its own baseline's, not the other's."""
    stepping = template.environment.cpu.stepping

    def on(cpu_stepping, seed, rate):
        run = variant(template, seed=seed, rate=rate, accuracy=98.0)
        run.run_id += f"-st{cpu_stepping}"
        run.environment.cpu = dataclasses.replace(run.environment.cpu, stepping=cpu_stepping)
        return run

    baseline_here = make_baseline([on(stepping, s, 10_000 + 10 * s) for s in range(5)], "here")
    baseline_there = make_baseline(
        [on(stepping + 1, s, 10_000 + 10 * s) for s in range(5)], "there"
    )
    here = [on(stepping, s, 5_000 + 10 * s) for s in range(5)]  # half as fast: slower
    there = [on(stepping + 1, s, 10_005 + 10 * s) for s in range(5)]  # unchanged: ok
    comparison = compare(
        [(None, run) for run in here + there], [baseline_here, baseline_there], Tolerances()
    )
    assert len(comparison.groups) == 2
    assert len({group.label for group in comparison.groups}) == 1  # printed alike
    by_baseline = {
        comparison.verdict_of(group.identity).baseline: comparison.verdict_of(
            group.identity
        ).speed.verdict
        for group in comparison.groups
    }
    assert by_baseline == {"here": "slower", "there": "ok"}
    records = {
        row["seed"]: row["group_speed_verdict"]
        for row in csv.DictReader(io.StringIO(to_csv(comparison)))
        if row["run_id"].endswith(f"-st{stepping + 1}")
    }
    assert set(records.values()) == {"ok"}
