"""The second hostile pass: documents that contradict themselves or each other, text that
would drive the terminal, resources far beyond the machine, an optional cache that cannot be
used, signals, and inputs at the edges. Each builds the fault, then checks what a user sees:
the exit code, the one line, the files left behind."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.measure.processes import children
from bench.storage.baselines import load_baselines, make_baseline
from bench.storage.files import collect, load_result, save_result
from mnist_core import DataError, load_mnist
from tests.conftest import REPO_ROOT, edited, make_tiny_mnist
from tests.test_distributed import free_port
from tests.test_faults import as_json_with, files_in, invoke, one_line_exit_2, smoke

ESC = "\x1b"


def bench_process(*args, env=None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def smoke_args(data: Path, out: Path, *extra) -> list:
    return ["run", "-d", "cpu", "--epochs", 1, "--max-steps", 2, "--data-dir", data,
            "--out", out, "--no-download", *extra]  # fmt: skip


# ---------------------------------------------------------------- documents and each other


def regressed(template, rate_factor=0.5):
    slower = copy.deepcopy(template)
    slower.summary.steady_train_images_per_s *= rate_factor
    return slower


@pytest.mark.parametrize("regressed_first", [True, False])
def test_two_different_runs_under_one_id_are_refused_naming_both(
    template, tmp_path, regressed_first
):
    baselines = tmp_path / "baselines"
    (baselines).mkdir()
    make = make_baseline([template])
    (baselines / "b.json").write_text(json.dumps(dataclasses.asdict(make)))
    first, second = (
        (regressed(template), template) if regressed_first else (template, regressed(template))
    )
    a, b = save_result(first, tmp_path / "a"), save_result(second, tmp_path / "b")
    outcome = invoke("compare", tmp_path / "a", tmp_path / "b", "--baseline", baselines,
                     "--fail-on-regression")  # fmt: skip
    one_line_exit_2(outcome, "names two different runs", str(a), str(b))
    with pytest.raises(ValueError, match="names two different runs"):
        collect([tmp_path / "a", tmp_path / "b"])


def test_a_copy_is_the_same_content_and_counts_once(template, tmp_path):
    first = save_result(template, tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "renamed.json").write_bytes(first.read_bytes())
    results, problems = collect([tmp_path / "a", tmp_path / "b"])
    assert len(results) == 1 and "counted once" in problems[0][1]


def test_a_run_passing_for_one_of_the_baselines_runs_is_judged_like_any_other(template, tmp_path):
    """A regressed run given the id of a baseline's own run must not be left out of the speed
    verdict as "the baseline's own run": only the same figures make it that run."""
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "b.json").write_text(json.dumps(dataclasses.asdict(make_baseline([template]))))
    save_result(template, tmp_path / "own")
    gate = ("--baseline", baselines, "--fail-on-regression", "--format", "json")
    own = invoke("compare", tmp_path / "own", *gate)
    assert own.exit_code == 0 and json.loads(own.stdout)["verdicts"] == []
    save_result(regressed(template), tmp_path / "impostor")
    impostor = invoke("compare", tmp_path / "impostor", *gate)
    assert impostor.exit_code in (1, 2), impostor.output  # slower, or not enough runs to say
    (verdict,) = json.loads(impostor.stdout.split("error:")[0])["verdicts"]
    assert verdict["speed"]["verdict"] != "ok"


CONTRADICTIONS = {
    "strict-not-bitwise": (
        lambda d: d["arithmetic"].update(bitwise_reruns=False),
        "bitwise_reruns",
    ),
    "off-but-bitwise": (lambda d: d["arithmetic"].update(determinism="off"), "bitwise_reruns"),
    "off-for-deterministic": (
        lambda d: d["arithmetic"].update(determinism="off", bitwise_reruns=False),
        "config.deterministic",
    ),
    "other-precision": (lambda d: d["arithmetic"].update(precision="bf16"), "precision"),
    "other-device": (lambda d: d["environment"].update(device_type="cuda"), "device_type"),
    "ranks-without-figures": (lambda d: d["config"].update(world_size=2), "world_size"),
    "confusion-vs-test-set": (
        lambda d: d["data"].update(test_samples=d["data"]["test_samples"] + 1),
        "confusion matrix",
    ),
    "epochs-out-of-order": (lambda d: d["epochs"].reverse(), "numbered"),
    "target-half-reached": (lambda d: d["summary"].update(epochs_to_target=1), "time_to_target"),
}


@pytest.mark.parametrize("name", CONTRADICTIONS)
def test_a_result_that_contradicts_itself_is_refused(template, tmp_path, name):
    mutate, reason = CONTRADICTIONS[name]
    (tmp_path / "bad.json").write_text(as_json_with(template, mutate))
    results, ((_, why),) = collect([tmp_path])
    assert results == [] and reason in why, why


@pytest.mark.parametrize(
    ("created", "reason"),
    [("2026-11-30T07:00:00", "no time zone"), ("yesterday", "not an ISO 8601"), ("", "ISO")],
)
def test_a_time_without_a_zone_or_not_a_time_is_refused(template, tmp_path, created, reason):
    (tmp_path / "r.json").write_text(
        as_json_with(template, lambda d: d.update(created_utc=created))
    )
    outcome = invoke("baseline", "save", tmp_path, "--dir", tmp_path / "baselines")
    one_line_exit_2(outcome, "created_utc", reason)
    assert not (tmp_path / "baselines").exists()


def test_an_empty_baseline_name_is_refused_not_replaced_by_the_default(template, tmp_path):
    save_result(template, tmp_path / "runs")
    outcome = invoke("baseline", "save", tmp_path / "runs", "--name", "", "--dir", tmp_path / "b")
    one_line_exit_2(outcome, "not a usable baseline name: ''")
    assert files_in(tmp_path / "b") == []


def two_seeds(template):
    runs = []
    for seed in (0, 1):
        run = copy.deepcopy(template)
        run.run_id, run.config.seed, run.weights_sha256 = f"run-{seed}", seed, f"digest-{seed}"
        runs.append(run)
    return runs


BASELINE_CONTRADICTIONS = {
    "sittings-vs-runs": (lambda d: d.update(sittings=3), "sittings"),
    "sittings-astronomical": (lambda d: d.update(sittings=10**400), "sittings"),  # not enumerated
    "duplicate-run-id": (lambda d: d["runs"][1].update(run_id=d["runs"][0]["run_id"]), "run id"),
    "seed-with-two-digests": (
        lambda d: d["runs"][1].update(seed=d["runs"][0]["seed"]),
        "two weights digests",
    ),
    "zone-less-time": (lambda d: d.update(created_utc="2026-11-30 07:00"), "time zone"),
    "empty-name": (lambda d: d.update(name=""), "baseline name"),
    "noise-without-a-sitting-of-two": (lambda d: d.update(noise_cv=None), "noise_cv"),
}


@pytest.mark.parametrize("name", BASELINE_CONTRADICTIONS)
def test_a_baseline_that_contradicts_itself_is_refused_and_the_gate_cannot_pass(
    template, tmp_path, name
):
    mutate, reason = BASELINE_CONTRADICTIONS[name]
    runs = two_seeds(template)
    document = dataclasses.asdict(make_baseline(runs))
    mutate(document)
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "b.json").write_text(json.dumps(document))
    baselines, ((_, why),) = load_baselines(folder)
    assert baselines == [] and reason in why, why
    for run in runs:
        save_result(run, tmp_path / "runs")
    outcome = invoke("compare", tmp_path / "runs", "--baseline", folder, "--fail-on-regression")
    one_line_exit_2(outcome, "cannot judge regressions", "b.json")


def test_a_seed_with_two_digests_is_allowed_where_runs_are_not_bitwise(template):
    not_strict = {
        "config.deterministic": False,
        "arithmetic.determinism": "off",
        "arithmetic.bitwise_reruns": False,
        "config.seed": 0,
    }
    runs = [edited(run, not_strict) for run in two_seeds(template)]
    document = dataclasses.asdict(make_baseline(runs))
    assert len({run["weights_sha256"] for run in document["runs"]}) == 2


def test_two_baselines_for_one_run_are_named_not_chosen_between(template, tmp_path):
    folder = tmp_path / "baselines"
    folder.mkdir()
    for name in ("first", "second"):
        baseline = dataclasses.asdict(make_baseline([template], name))
        (folder / f"{name}.json").write_text(json.dumps(baseline))
    save_result(template, tmp_path / "runs")
    outcome = invoke("compare", tmp_path / "runs", "--baseline", folder, "--fail-on-regression")
    one_line_exit_2(outcome, "2 baselines match (first, second)")


def test_a_swapped_weights_file_gives_no_distance_and_says_so(template, tmp_path):
    import torch

    from mnist_core import Net, state_dict_digest

    cpu, cuda = copy.deepcopy(template), copy.deepcopy(template)
    cuda.run_id = "cuda-run"
    cuda.environment.device_type, cuda.config.device = "cuda", "cuda:0"
    weights = Net().state_dict()
    cpu.weights_file, cuda.weights_file = "cpu.pt", "cuda.pt"
    cpu.weights_sha256 = cuda.weights_sha256 = state_dict_digest(weights)
    torch.save(weights, tmp_path / "cpu.pt")
    torch.save(weights, tmp_path / "cuda.pt")
    save_result(cpu, tmp_path)
    save_result(cuda, tmp_path)
    honest = json.loads(invoke("compare", tmp_path, "--format", "json").stdout)
    assert [pair["relative_l2"] for pair in honest["cross_device"]] == [0.0]
    torch.save(Net().state_dict(), tmp_path / "cuda.pt")  # other weights under the same name
    swapped = json.loads(invoke("compare", tmp_path, "--format", "json").stdout)
    assert [pair["relative_l2"] for pair in swapped["cross_device"]] == [None]
    assert any("is not the weights cuda-run records" in p["reason"] for p in swapped["problems"])


# ---------------------------------------------------------------- text reaches the terminal inert


def test_inert_writes_control_and_format_characters_as_escapes():
    from bench.show.tables import inert, shown

    assert inert(f"a{ESC}[2Jb\r\u202ec\td") == "a\\x1b[2Jb\\r\\u202ec\\td"
    assert inert("line\nnext") == "line\\nnext" and inert("line\nnext", True) == "line\nnext"
    assert inert("plain · ü text") == "plain · ü text"
    assert shown("[bold red]x[/]") == "\\[bold red]x\\[/]"


@pytest.mark.parametrize("output_format", ["table", "markdown", "csv"])
def test_strings_from_a_result_reach_the_terminal_inert(template, tmp_path, output_format):
    hostile = copy.deepcopy(template)
    hostile.run_id = f"{ESC}]0;owned{ESC}\\{ESC}[2J[bold red]run[/]"
    hostile.environment.device_name = f"CPU{ESC}[31m\rspoof"
    hostile.notes = [f"note{ESC}[1A"]
    save_result(hostile, tmp_path / "runs")
    (tmp_path / "runs" / f"bad{ESC}[5m.json").write_text("{")
    outcome = invoke("compare", tmp_path / "runs", "--format", output_format)
    assert outcome.exit_code == 0, outcome.output
    assert ESC not in outcome.output and "\r" not in outcome.output.replace("\r\n", "\n")
    assert "\\x1b" in outcome.output  # shown, as an escape
    if output_format == "table":
        assert "[bold red]run[/]" in outcome.output  # markup shown, not interpreted


def test_an_argument_with_escapes_is_shown_inert_in_the_error_line(tmp_path):
    outcome = invoke("compare", tmp_path / f"nowhere{ESC}[2J")
    one_line_exit_2(outcome, "nowhere\\x1b[2J")
    assert ESC not in outcome.output


def test_the_report_shows_strings_from_a_result_inert(template, tmp_path):
    hostile = copy.deepcopy(template)
    hostile.environment.git_commit = f"abc{ESC}[2J"
    hostile.environment.device_name = f"CPU{ESC}]0;title{ESC}\\"
    save_result(hostile, tmp_path)
    outcome = invoke("report", tmp_path, "--out", tmp_path / "report.md")
    assert outcome.exit_code == 0, outcome.output
    assert ESC not in outcome.output and ESC not in (tmp_path / "report.md").read_text()
    assert "abc\\x1b[2J" in outcome.output


# ---------------------------------------------------------------- bounded resources


def test_threads_far_beyond_the_machine_are_refused_in_one_line(tiny_mnist, tmp_path):
    threads = 64 * (os.cpu_count() or 1) + 1
    one_line_exit_2(smoke(tiny_mnist, tmp_path / "o", "--threads", threads), "--threads", "far")
    outcome = invoke("sweep", "-d", "cpu", "--threads", f"1,{threads}", "--data-dir", tiny_mnist,
                     "--no-download", "--out", tmp_path / "s")  # fmt: skip
    one_line_exit_2(outcome, f"--threads {threads}")
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


# ---------------------------------------------------------------- optional things stay optional


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "mnist-bench" / "peak"


@pytest.mark.slow
def test_a_peak_cache_that_cannot_be_written_is_a_note(tiny_mnist, tmp_path, own_cache):
    own_cache.parent.mkdir(parents=True)
    own_cache.write_text("a file where the cache folder should be")
    outcome = smoke(tiny_mnist, tmp_path / "out")
    assert outcome.exit_code == 0, outcome.output
    (path,) = (tmp_path / "out").glob("*.json")
    result = load_result(path)
    assert result.summary.mfu_pct is not None  # measured, only not kept
    assert any("the peak was not cached" in note for note in result.notes)


@pytest.mark.slow
def test_a_fifo_in_place_of_the_cached_peak_is_passed_over(tiny_mnist, tmp_path, own_cache):
    import torch

    from bench.measure.environment import fingerprint
    from bench.measure.peak import cache_path, peak_machine

    machine = peak_machine(fingerprint(torch.device("cpu")))
    fifo = cache_path(machine, "cpu", "fp32", 1)  # the entry of a run with --threads 1
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    args = smoke_args(tiny_mnist, tmp_path / "out", "--threads", 1)
    process = bench_process(*args, env=dict(os.environ))
    try:
        _, stderr = process.communicate(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    (path,) = (tmp_path / "out").glob("*.json")
    assert load_result(path).summary.mfu_pct is not None
    assert fifo.is_file()  # measured again, and cached in its place


# ---------------------------------------------------------------- processes and signals


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow  # a fresh process
def test_a_reader_that_goes_away_is_not_a_regression():
    """`compare … | head`: the pipe closed under the command ends it quietly with 128 + 13,
    as SIGPIPE ends a shell tool; rich and click would both exit 1, a regression's code."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        ended = subprocess.run(
            [sys.executable, "-m", "bench", "compare", "tests/data", "--all"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (ended.returncode, ended.stderr) == (128 + signal.SIGPIPE, "")


# A child that answers SIGTERM (saving nothing, exiting 143) and says so in a file, or one that
# ignores it; either prints "ready" once its handler is set.
TERM_CHILD = """
import pathlib, signal, sys, time
def answered(*_):
    pathlib.Path(sys.argv[1]).write_text("TERM")
    sys.exit(143)
signal.signal(signal.SIGTERM, answered if sys.argv[2] == "answers" else signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.slow  # a fresh process
@pytest.mark.parametrize(("child", "code", "said"), [("answers", 143, "TERM"), ("ignores", -9, "")])
def test_a_child_group_is_asked_to_end_before_it_is_killed(
    tmp_path, monkeypatch, child, code, said
):
    """What ends a replicate, a rerun or a probe: SIGTERM to its group first, and the child
    that answers it ends by itself (its own exit code, having said so); only one that ignores
    it is killed once the grace (cut short here) is over."""
    from bench.measure import processes

    monkeypatch.setattr(processes, "GRACE_S", 1.0)
    marker = tmp_path / "marker"
    command = [sys.executable, "-c", TERM_CHILD, str(marker), child]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    processes._end_process_group(process)
    assert process.returncode == code
    assert (marker.read_text() if marker.exists() else "") == said


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads children from /proc")
def test_sigterm_to_a_repeat_series_ends_and_reaps_its_replicate(tiny_mnist, tmp_path):
    out = tmp_path / "deep" / "out"
    series = bench_process(*smoke_args(tiny_mnist, out, "--repeat", 3, "--max-steps", 10**6,
                                       "--epochs", 1000))  # fmt: skip
    deadline = time.monotonic() + 120
    while not children(series.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    (replicate,) = children(series.pid)
    time.sleep(1.0)
    series.send_signal(signal.SIGTERM)
    _, stderr = series.communicate(timeout=120)
    assert series.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and stderr.strip().endswith(
        "saved, the unfinished one wrote nothing"
    )
    assert not alive(replicate)
    assert not (tmp_path / "deep").exists()  # nothing written: no folder left either


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads children from /proc")
def test_sigterm_to_a_portable_run_reaches_its_rerun_which_cleans_up(tiny_mnist, tmp_path):
    """`run --portable` hands the run to a fresh process on the terminal: SIGTERM to the one
    the user started is passed on, the rerun removes what it wrote, both end 128 + 15."""
    out = tmp_path / "deep" / "out"
    parent = bench_process(*smoke_args(tiny_mnist, out, "--portable", "--max-steps", 10**6,
                                       "--epochs", 1000))  # fmt: skip
    assert parent.stdout is not None
    while "seed 0" not in parent.stdout.readline():  # the rerun has started training
        assert parent.poll() is None, parent.communicate()
    (rerun,) = children(parent.pid)
    parent.send_signal(signal.SIGTERM)
    _, stderr = parent.communicate(timeout=120)
    assert parent.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and not alive(rerun)
    assert stderr.count("error: interrupted") == 1, stderr  # the rerun's, said once
    assert not (tmp_path / "deep").exists()


def loading_the_cli(pid: int) -> bool:
    """Whether the process has begun importing the CLI (pydantic's core is among its first
    libraries): past the interpreter's start, where no handler of ours could run yet."""
    try:
        return "pydantic_core" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the maps from /proc")
def test_ctrl_c_while_the_cli_loads_prints_one_line(tmp_path):
    # As from a terminal: SIGINT handled, even where this test runs with it ignored.
    process = bench_process(
        "compare", tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    )
    deadline = time.monotonic() + 60
    while not loading_the_cli(process.pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert stderr.strip() == "error: interrupted", stderr
    # 130 from the handler; rarely, under load, the interpreter reports the SIGINT itself
    # (-2) after the line was printed. Either way: ended by Ctrl-C, in one line.
    assert process.returncode in (130, -signal.SIGINT), process.returncode


def test_an_interrupted_baseline_save_does_not_speak_of_runs(template, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bench.jobs.save_baseline_from", interrupted)
    save_result(template, tmp_path)
    outcome = invoke("baseline", "save", tmp_path, "--dir", tmp_path / "b")
    assert outcome.exit_code == 130 and outcome.output.strip() == "error: interrupted"


@pytest.mark.slow
def test_a_failed_repeat_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "a" / "b" / "c"
    outcome = invoke("run", "-d", "cpu", "--repeat", 2, "--data-dir", tmp_path / "no-data",
                     "--no-download", "--out", out)  # fmt: skip
    one_line_exit_2(outcome, "replicate 1", "not found")
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------- inputs at the edges


def test_world_size_without_a_rendezvous_address_is_one_line(tiny_mnist, tmp_path, monkeypatch):
    for name, value in {"WORLD_SIZE": "2", "RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    one_line_exit_2(smoke(tiny_mnist, tmp_path / "o"), "MASTER_ADDR and MASTER_PORT are not")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_rank_whose_peers_never_join_ends_in_one_line(tiny_mnist, tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}  # fmt: skip
    process = bench_process(*smoke_args(tiny_mnist, tmp_path / "o", "--dist-timeout", 3), env=env)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    (line,) = stderr.strip().splitlines()
    assert "did not meet" in line and "--dist-timeout 3 s" in line
    assert not (tmp_path / "o").exists()


def test_a_raw_file_claiming_more_items_than_mnist_is_refused(tiny_mnist):
    (tiny_mnist / "t10k-labels-idx1-ubyte.gz").unlink()
    count = 10_001  # a consistent file, one label longer than MNIST's test split
    (tiny_mnist / "t10k-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, count) + bytes(count)
    )
    with pytest.raises(DataError, match="header claims 10,001 items; MNIST's file has 10,000"):
        load_mnist(tiny_mnist, download=False)


def test_an_empty_test_split_is_named(tmp_path):
    data = make_tiny_mnist(tmp_path / "mnist", test=0)
    with pytest.raises(DataError, match="t10k-.*holds no items"):
        load_mnist(data, download=False)
    one_line_exit_2(smoke(data, tmp_path / "o"), "holds no items")


# ---------------------------------------------------------------- found in this pass


@pytest.mark.parametrize(
    "name", ["a\nb", f"x{ESC}[2J", "x" * 251, "é" * 126], ids=["newline", "escape", "long", "bytes"]
)
def test_a_baseline_name_no_file_system_or_terminal_takes_well_is_refused(template, tmp_path, name):
    save_result(template, tmp_path / "runs")
    outcome = invoke("baseline", "save", tmp_path / "runs", "--name", name, "--dir", tmp_path / "b")
    one_line_exit_2(outcome, "not a usable baseline name")
    assert ESC not in outcome.output and not (tmp_path / "b").exists()


def test_a_baselines_dir_that_is_a_file_is_named_as_such(template, tmp_path):
    path = save_result(template, tmp_path / "runs")
    one_line_exit_2(invoke("baseline", "save", path, "--dir", path), f"{path} is not a folder")


def test_a_baselines_dir_whose_name_is_too_long_is_one_line(template, tmp_path):
    path = save_result(template, tmp_path / "runs")
    outcome = invoke("baseline", "save", path, "--dir", tmp_path / ("n" * 300))
    one_line_exit_2(outcome, "File name too long")


def deeper_than_path_max(root: Path) -> None:
    """Folders nested below `root` until their path is longer than the system opens."""
    folder = os.open(root, os.O_RDONLY)
    try:
        for _ in range(20):  # 20 × 251 bytes: past PATH_MAX (4096)
            os.mkdir("d" * 250, dir_fd=folder)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = inner
    finally:
        os.close(folder)


@pytest.mark.parametrize("as_baselines", [False, True])
def test_a_folder_nested_past_what_the_system_opens_is_one_line(template, tmp_path, as_baselines):
    save_result(template, tmp_path / "runs")
    deeper_than_path_max(tmp_path / "runs")
    where = ["--baseline", tmp_path / "runs"] if as_baselines else []
    outcome = invoke("compare", tmp_path / "runs", *where)
    one_line_exit_2(outcome, "cannot be searched", "File name too long")


@pytest.mark.parametrize("seconds", ["1e300", "0.01"])
def test_a_dist_timeout_torch_cannot_hold_is_refused(tiny_mnist, tmp_path, seconds):
    outcome = smoke(tiny_mnist, tmp_path / "o", "--nproc-per-node", 2, "--dist-timeout", seconds)
    one_line_exit_2(outcome, "--dist-timeout ")
    assert "Input should be" in outcome.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_closed_stdout_is_no_traceback(template, tmp_path):
    save_result(template, tmp_path)
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "compare", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),  # as `mnist-bench compare … >&-`
    )
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr


def test_a_file_where_a_folder_should_be_is_named(template, tmp_path):
    path = save_result(template, tmp_path)
    outcome = invoke("compare", path, "--plot", path / "plot.png")
    one_line_exit_2(outcome, f"{path} is a file, not a folder")


def test_no_home_folder_is_one_line_for_the_data_and_a_note_for_the_peak_cache(monkeypatch):
    """A process with no HOME and no home in the user database: the default data folder
    cannot exist (one line saying what to set), the optional peak cache is skipped (a note)."""
    from bench.measure.peak import _cache_entry, save_cached
    from bench.storage.records import Peak

    def no_home(cls):
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("MNIST_BENCH_DATA", raising=False)
    monkeypatch.setattr(Path, "home", classmethod(no_home))
    with pytest.raises(DataError, match="no home folder .*set XDG_CACHE_HOME"):
        load_mnist()
    assert _cache_entry("Test CPU", "cpu", "fp32", 1) is None
    peak = Peak(1e9, 1e9, 64, 1.0, "float32", "fp32", "2026-11-30T00:00:00+00:00")
    assert "not cached (no home folder" in (save_cached(peak, None) or "")


@pytest.mark.parametrize("option", ["--out", "--html"])
def test_a_write_that_fails_leaves_no_folder_it_made(template, tmp_path, option):
    save_result(template, tmp_path / "runs")
    target = tmp_path / "new" / "deeper" / ("n" * 300)  # a name the system refuses
    one_line_exit_2(invoke("report", tmp_path / "runs", option, target), "File name too long")
    assert not (tmp_path / "new").exists()
