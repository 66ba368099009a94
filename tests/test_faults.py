"""Hostile inputs and faults: each builds the fault, then checks the exit code, the message and
the exact set of files left behind. The promise under test: no input gives a wrong verdict,
loses a written result, prints a traceback or hangs."""

from __future__ import annotations

import copy
import gzip
import json
import multiprocessing
import os
import struct
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bench.cli import app
from bench.config.options import ComparisonRequest
from bench.jobs import RecordedRun, compare_paths, record
from bench.measure.run import Measurement
from bench.storage.baselines import make_baseline, save_baseline
from bench.storage.files import collect, load_result, save_result
from mnist_core import DataError, load_mnist

runner = CliRunner(env={"COLUMNS": "250"})


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_exit_2(outcome, *fragments):
    """Exit 2 with one error line (the last thing printed), naming what is wrong."""
    assert outcome.exit_code == 2, outcome.output
    assert "Traceback" not in outcome.output
    errors = [line for line in outcome.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and outcome.output.strip().endswith(errors[0]), outcome.output
    for fragment in fragments:
        assert fragment in errors[0], outcome.output


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def smoke(data, out, *extra):
    return invoke(
        "run", "-d", "cpu", "--epochs", 1, "--max-steps", 2, "--data-dir", data, "--out", out,
        "--no-download", *extra,
    )  # fmt: skip


# ---------------------------------------------------------------- wrong answers: options


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--lr", "inf"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--target-acc", "nan"], "--target-acc"),
        (["--target-acc", "0"], "--target-acc"),
        (["--target-acc", "101"], "--target-acc"),
        (["--epochs", str(10**30)], "--epochs"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**64)], "--seed"),
        (["--threads", str(10**20)], "--threads"),
        (["--max-steps", "0"], "--max-steps"),
        (["--batch-size", "301"], "--batch-size 301 is larger than the 300 training images"),
        (["--dist-timeout", "nan"], "--dist-timeout"),
    ],
)
def test_out_of_range_options_end_in_one_line(tiny_mnist, tmp_path, args, option):
    out = tmp_path / "out"
    one_line_exit_2(smoke(tiny_mnist, out, *args), option)
    assert not out.exists(), "no folder left behind by a refused run"


@pytest.mark.slow
def test_more_threads_than_cores_are_allowed_and_noted(tiny_mnist, tmp_path):
    threads = (os.cpu_count() or 1) + 1
    outcome = smoke(tiny_mnist, tmp_path, "--threads", threads)
    assert outcome.exit_code == 0, outcome.output
    (path,) = tmp_path.glob("*.json")
    assert any("oversubscribed" in note for note in load_result(path).notes)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "100"])
def test_compare_tolerances_must_be_finite_and_in_range(template, tmp_path, value):
    save_result(template, tmp_path)
    one_line_exit_2(invoke("compare", tmp_path, "--throughput-tolerance", value), "--throughput")


def test_a_divergence_in_the_last_step_is_caught(tiny_mnist, tmp_path):
    # One step whose loss is still finite, whose update sends the weights to infinity: only
    # the test loss shows it.
    outcome = smoke(tiny_mnist, tmp_path / "out", "--lr", "1e38", "--max-steps", 1)
    one_line_exit_2(outcome, "diverged")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- wrong answers: files


def as_json_with(result, mutate) -> str:
    document = result.to_dict()
    mutate(document)
    return json.dumps(document)  # json writes NaN and Infinity as bare words, as a hostile file may


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d["summary"].update(steady_train_images_per_s=float("nan")), "not strict JSON"),
        (lambda d: d["summary"].update(final_test_accuracy_pct=float("inf")), "not strict JSON"),
        (lambda d: d["summary"].update(final_test_accuracy_pct=101.0), "less than or equal"),
        (lambda d: d["summary"].update(steady_train_images_per_s=-5.0), "greater than or equal"),
        (lambda d: d["summary"].update(steady_train_images_per_s=1e309), "not strict JSON"),
        (lambda d: d["config"].update(epochs="5"), "valid integer"),
        # A count no float holds: it used to reach a ratio and crash compare (OverflowError).
        (lambda d: d["disturbance"].update(cores=10**400), "less than or equal to 90071992547"),
        (lambda d: d["config"].update(epochs=True), "valid integer"),
        (lambda d: d.pop("summary"), "summary"),
    ],
)
def test_results_with_impossible_figures_are_skipped_with_a_reason(
    template, tmp_path, mutate, reason
):
    (tmp_path / "bad.json").write_text(as_json_with(template, mutate))
    results, problems = collect([tmp_path])
    assert results == []
    ((path, why),) = problems
    assert path.name == "bad.json" and reason in why


def test_a_nan_baseline_makes_the_gate_fail_not_pass(template, tmp_path):
    runs, baselines = tmp_path / "runs", tmp_path / "baselines"
    save_result(template, runs)
    save_baseline(make_baseline([template]), baselines)
    (baseline_path,) = baselines.glob("*.json")
    document = json.loads(baseline_path.read_text())
    document["runs"][0]["steady_train_images_per_s"] = float("nan")
    baseline_path.write_text(json.dumps(document))
    outcome = invoke("compare", runs, "--baseline", baselines, "--fail-on-regression")
    assert outcome.exit_code == 2, outcome.output
    assert "cannot judge regressions" in outcome.output and baseline_path.name in outcome.output


def test_a_run_result_given_as_the_baseline_makes_the_gate_fail(template, tmp_path):
    path = save_result(template, tmp_path / "runs")
    outcome = invoke("compare", path, "--baseline", path, "--fail-on-regression")
    assert outcome.exit_code == 2
    assert "not a baseline but a result document" in outcome.output


def test_a_run_without_a_baseline_makes_the_gate_fail_not_pass(template, tmp_path):
    save_result(template, tmp_path / "runs")
    (tmp_path / "baselines").mkdir()
    outcome = invoke(
        "compare", tmp_path / "runs", "--baseline", tmp_path / "baselines", "--fail-on-regression"
    )
    assert outcome.exit_code == 2 and "has no baseline" in outcome.output
    assert invoke("compare", tmp_path / "runs", "--baseline", tmp_path / "baselines").exit_code == 0


def test_without_the_gate_an_unreadable_baseline_is_listed(template, tmp_path):
    save_result(template, tmp_path / "runs")
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "broken.json").write_text("{")
    outcome = invoke("compare", tmp_path / "runs", "--baseline", tmp_path / "baselines")
    assert outcome.exit_code == 0
    assert "skipped baseline" in outcome.output and "broken.json" in outcome.output


# ---------------------------------------------------------------- repeated inputs


def test_the_same_run_twice_is_one_run(template, tmp_path):
    first = save_result(template, tmp_path / "a")
    (tmp_path / "b").mkdir()
    copy_path = tmp_path / "b" / "copy.json"
    copy_path.write_bytes(first.read_bytes())
    results, problems = collect([first, first, tmp_path / "b"])
    assert [path for path, _ in results] == [first]
    assert [path for path, _ in problems] == [first, copy_path]
    assert all("counted once" in why for _, why in problems)


def test_a_copied_run_is_not_a_bitwise_rerun_in_the_report(template, tmp_path):
    first = save_result(template, tmp_path)
    (tmp_path / "copy.json").write_bytes(first.read_bytes())
    outcome = invoke("report", tmp_path)
    assert outcome.exit_code == 0
    assert "no seed was rerun" in outcome.output and "bitwise identical" not in outcome.output
    assert "counted once" in outcome.output


# ---------------------------------------------------------------- nothing lost


def test_a_result_is_never_replaced(template, tmp_path):
    path = save_result(template, tmp_path)
    before = path.read_bytes()
    changed = copy.deepcopy(template)
    changed.summary.final_test_accuracy_pct = 1.0
    with pytest.raises(OSError, match="exists already"):
        save_result(changed, tmp_path)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == [path.name]


def _write_many(folder: str, worker: int) -> None:
    from tests.conftest import COMMITTED_RESULT

    result = load_result(COMMITTED_RESULT)
    for index in range(10):
        result.run_id = f"w{worker}-{index}"
        save_result(result, Path(folder))


def test_processes_writing_into_one_folder_at_once_keep_every_file(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    results, problems = collect([tmp_path])
    assert len(results) == 40 and problems == []
    assert not list(tmp_path.glob(".*"))


@pytest.mark.slow
def test_two_sweeps_in_one_second_keep_both_files(tiny_mnist, tmp_path):
    args = ["sweep", "-d", "cpu", "--batch-sizes", "50", "--steps", "1"]
    args += ["--data-dir", tiny_mnist, "--no-download", "--out", tmp_path]
    for _ in range(2):
        assert invoke(*args).exit_code == 0
    assert len(list(tmp_path.glob("sweep-*.json"))) == 2
    assert len(list(tmp_path.glob("sweep-*.png"))) == 2


def test_a_run_whose_files_fail_part_way_leaves_none(template, tmp_path, monkeypatch):
    import bench.jobs

    def failing_save(result, folder):
        raise OSError(28, "No space left on device", str(folder / f"{result.run_id}.json"))

    monkeypatch.setattr(bench.jobs, "save_result", failing_save)
    measurement = Measurement(copy.deepcopy(template), {"w": __import__("torch").zeros(3)})
    with pytest.raises(OSError):
        record(measurement, tmp_path, plot=True)
    assert files_in(tmp_path) == []


def test_a_run_records_all_its_files(template, tmp_path):
    import torch

    recorded = record(
        Measurement(copy.deepcopy(template), {"w": torch.zeros(3)}), tmp_path, plot=True
    )
    assert isinstance(recorded, RecordedRun)
    assert sorted(p.name for p in recorded.paths) == files_in(tmp_path)
    assert len(files_in(tmp_path)) == 3


def test_an_output_path_that_is_a_file_fails_before_training(tiny_mnist, tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    one_line_exit_2(smoke(tiny_mnist, out), "cannot write results to", "not a folder")
    assert out.read_text() == "x"


def test_a_strong_scaling_batch_smaller_than_the_ranks_is_refused(tiny_mnist, tmp_path):
    outcome = smoke(tiny_mnist, tmp_path / "out", "--nproc-per-node", 2, "--batch-size", 1)
    one_line_exit_2(outcome, "--batch-size 1 cannot be shared by 2 ranks")


def test_a_sweep_batch_that_leaves_nothing_to_time_is_refused(tiny_mnist, tmp_path):
    args = ["sweep", "-d", "cpu", "--batch-sizes", "150", "--steps", "1", "--data-dir"]
    outcome = invoke(*args, tiny_mnist, "--no-download", "--out", tmp_path / "o")
    one_line_exit_2(outcome, "--batch-sizes 150 leaves no batch")
    assert not (tmp_path / "o").exists()


def test_weights_of_another_network_give_no_distance_and_say_why(template, tmp_path):
    import torch

    cpu, cuda = copy.deepcopy(template), copy.deepcopy(template)
    cuda.run_id = "cuda-run"
    cuda.environment.device_type, cuda.config.device = "cuda", "cuda:0"
    cpu.weights_file, cuda.weights_file = "cpu.pt", "cuda.pt"
    from mnist_core import state_dict_digest

    for result, weights in ((cpu, {"a": torch.ones(2)}), (cuda, {"b": torch.ones(2)})):
        torch.save(weights, tmp_path / result.weights_file)
        result.weights_sha256 = state_dict_digest(weights)  # what each result records
    save_result(cpu, tmp_path)
    save_result(cuda, tmp_path)
    outcome = invoke("compare", tmp_path, "--format", "json")
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert [pair["relative_l2"] for pair in payload["cross_device"]] == [None]
    assert any("other tensors" in p["reason"] for p in payload["problems"])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(epochs=[], step_losses=[]),
        lambda d: d.update(confusion=d["confusion"][:3]),
        lambda d: d.update(per_class_accuracy_pct=[]),
        lambda d: d.update(weights_file="../../elsewhere.pt"),
        lambda d: d["summary"].update(steady_train_images_per_s=1.7e308),
        lambda d: d["summary"].update(steady_train_images_per_s=5e-324),
    ],
    ids=["no-epochs", "short-confusion", "no-classes", "weights-path", "huge", "tiny"],
)
def test_documents_no_run_could_have_written_are_refused(template, tmp_path, mutate):
    (tmp_path / "odd.json").write_text(as_json_with(template, mutate))
    results, problems = collect([tmp_path])
    assert results == [] and len(problems) == 1


@pytest.mark.slow
def test_a_corrupt_peak_cache_is_measured_again(tmp_path, monkeypatch):
    import torch

    from bench.measure.peak import cache_path, cached_peak

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = cache_path("Test CPU", "cpu", "fp32", 1)
    path.parent.mkdir(parents=True)
    path.write_text('{"matmul_flops_per_s": Infinity}')
    peak, _ = cached_peak(torch.device("cpu"), "Test CPU", "fp32", 1)
    assert 0 < peak.matmul_flops_per_s < float("inf")
    assert "Infinity" not in path.read_text()


def test_an_over_long_output_path_fails_before_training(tiny_mnist, tmp_path):
    out = tmp_path / ("x" * 300)
    one_line_exit_2(smoke(tiny_mnist, out), str(out), "File name too long")
    assert files_in(tmp_path) == ["mnist"]


@contextmanager
def mounted(target: Path, *options: str):
    target.mkdir()
    mount = subprocess.run(["mount", *options, str(target)], capture_output=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount here: {mount.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=False)


def test_a_full_disk_fails_with_one_line_and_leaves_nothing(tiny_mnist, tmp_path):
    with mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=16k", "tmpfs") as disk:
        outcome = smoke(tiny_mnist, disk, "--save-weights", "--plot")
        one_line_exit_2(outcome, str(disk), "No space left on device")
        assert files_in(disk) == []


def test_a_read_only_folder_fails_before_training(tiny_mnist, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    with mounted(tmp_path / "ro", "--bind", str(source)) as target:
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=False)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only here")
        one_line_exit_2(smoke(tiny_mnist, target), "cannot write results to", "Read-only")
        assert files_in(source) == []


# ---------------------------------------------------------------- no crash, no hang


@pytest.mark.slow
def test_special_files_are_skipped_and_the_rest_compared(template, tmp_path):
    save_result(template, tmp_path)
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "link.json").symlink_to(tmp_path / "fifo.json")
    (tmp_path / "device.json").symlink_to("/dev/zero")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "huge.json").write_bytes(b" " * (65 * 2**20))
    (tmp_path / "bignumber.json").write_text("1" * 1_000_000)
    outcome = subprocess.run(
        [sys.executable, "-m", "bench", "compare", str(tmp_path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: a FIFO read would block for ever
        check=False,
    )
    assert outcome.returncode == 0, outcome.stderr
    payload = json.loads(outcome.stdout)
    assert len(payload["runs"]) == 1
    reasons = {Path(p["path"]).name: p["reason"] for p in payload["problems"]}
    assert "regular file" in reasons["fifo.json"] and "regular file" in reasons["link.json"]
    assert "regular file" in reasons["device.json"] and "folder" in reasons["folder.json"]
    assert "recursion limit" in reasons["deep.json"] and "too large" in reasons["huge.json"]
    assert "bignumber.json" in reasons


def test_corrupt_weights_are_reported_and_the_rest_compared(template, tmp_path):
    cpu = copy.deepcopy(template)
    cuda = copy.deepcopy(template)
    cuda.run_id = "cuda-run"
    cuda.environment.device_type, cuda.config.device = "cuda", "cuda:0"
    cpu.weights_file, cuda.weights_file = "cpu.pt", "cuda.pt"
    (tmp_path / "cpu.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "cuda.pt").write_bytes(b"nor this")
    save_result(cpu, tmp_path)
    save_result(cuda, tmp_path)
    outcome = invoke("compare", tmp_path, "--format", "json")
    assert outcome.exit_code == 0
    payload = json.loads(outcome.stdout)
    assert [pair["relative_l2"] for pair in payload["cross_device"]] == [None]
    assert any("not a weights file" in p["reason"] for p in payload["problems"])


def write_gz(path: Path, header: bytes, body_mb: int) -> None:
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(header)
        for _ in range(body_mb):
            handle.write(bytes(2**20))


def test_a_decompression_bomb_is_refused_after_a_byte_more_than_its_header_says(
    tiny_mnist, monkeypatch
):
    labels = tiny_mnist / "t10k-labels-idx1-ubyte.gz"
    # A valid header for 100 labels, then 200 MB more than it says.
    write_gz(labels, struct.pack(">II", 0x801, 100), 200)
    decompressed: dict[str, int] = {}
    read = gzip.GzipFile.read

    def counted(self, size=-1):
        chunk = read(self, size)
        decompressed[self.name] = decompressed.get(self.name, 0) + len(chunk)
        return chunk

    monkeypatch.setattr(gzip.GzipFile, "read", counted)
    with pytest.raises(DataError, match="longer than its header says"):
        load_mnist(tiny_mnist, download=False)
    assert decompressed[str(labels)] == 8 + 100 + 1


def test_a_header_claiming_more_than_mnist_is_refused(tiny_mnist):
    labels = tiny_mnist / "t10k-labels-idx1-ubyte.gz"
    write_gz(labels, struct.pack(">II", 0x801, 10**9), 0)
    with pytest.raises(DataError, match="header claims 1,000,000,000 items"):
        load_mnist(tiny_mnist, download=False)


# ---------------------------------------------------------------- distributed


def test_distributed_user_errors_end_before_torchrun_starts(tiny_mnist, tmp_path):
    bad_reference = tmp_path / "ref.json"
    bad_reference.write_text("{")
    outcome = smoke(
        tiny_mnist, tmp_path / "out", "--nproc-per-node", 2, "--reference", bad_reference
    )
    one_line_exit_2(outcome, "ref.json")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_stray_world_size_is_a_clear_error(tiny_mnist, tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2"}
    env.pop("RANK", None)
    outcome = subprocess.run(
        [sys.executable, "-m", "bench", "run", "-d", "cpu", "--epochs", "1", "--max-steps", "1",
         "--data-dir", str(tiny_mnist), "--out", str(tmp_path / "o"), "--no-download"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert outcome.returncode == 2 and "Traceback" not in outcome.stderr
    assert "WORLD_SIZE=2 is set but RANK is not" in outcome.stderr


# ---------------------------------------------------------------- the gate never passes blind


JSON_NASTIES = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), 10**400, -1, "text", None, True, [], {}]
)


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_baselines_never_let_the_gate_pass_blind(template, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("gate")
    runs, baselines = folder / "runs", folder / "baselines"
    save_result(template, runs)
    baseline_path = save_baseline(two_sittings_of(template), baselines)
    document = json.loads(baseline_path.read_text())
    section = data.draw(st.sampled_from(["runs", "config", "hardware", "top"]))
    target = {"runs": document["runs"][0], "top": document}.get(section, document.get(section))
    key = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.booleans()):
        target[key] = data.draw(JSON_NASTIES)
    else:
        del target[key]
    baseline_path.write_text(json.dumps(document))
    outcome = invoke("compare", runs, "--baseline", baselines, "--fail-on-regression")
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit)
    comparison = compare_paths([runs], ComparisonRequest(baseline=baselines))
    if comparison.baseline_problems or comparison.rows[0].why_no_baseline:
        # A baseline it could not read, or one that no longer matches: it must not pass.
        assert comparison.why_cannot_judge
    if comparison.regressions:
        assert outcome.exit_code == 1, outcome.output
    elif comparison.why_cannot_judge:
        assert outcome.exit_code == 2, outcome.output
        assert "cannot judge regressions" in outcome.output
    else:
        assert outcome.exit_code == 0, outcome.output


def two_sittings_of(result):
    """A baseline of `result` run once in each of two sittings: everything it needs to judge
    a rerun of that run (as `ok`) is there."""
    sittings = []
    for sitting in range(2):
        rerun = copy.deepcopy(result)
        rerun.run_id, rerun.group = f"{result.run_id}-{sitting}", f"g{sitting}"
        sittings.append(rerun)
    return make_baseline(sittings)


def test_an_unmutated_two_sitting_baseline_passes_the_gate(template, tmp_path):
    save_result(template, tmp_path / "runs")
    save_baseline(two_sittings_of(template), tmp_path / "baselines")
    outcome = invoke(
        "compare", tmp_path / "runs", "--baseline", tmp_path / "baselines", "--fail-on-regression"
    )
    assert outcome.exit_code == 0, outcome.output


def test_a_regression_found_beside_what_cannot_be_judged_still_exits_1(template, tmp_path):
    runs, baselines = tmp_path / "runs", tmp_path / "baselines"
    save_baseline(make_baseline([template]), baselines)  # one sitting: speed cannot be told
    changed = copy.deepcopy(template)
    changed.run_id, changed.weights_sha256 = "changed", "0" * 64
    unjudged = copy.deepcopy(template)
    unjudged.run_id, unjudged.config.seed = "other-seed", 7
    for result in (changed, unjudged):
        save_result(result, runs)
    outcome = invoke("compare", runs, "--baseline", baselines, "--fail-on-regression")
    assert outcome.exit_code == 1, outcome.output
