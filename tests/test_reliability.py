"""The third hostile pass: what a run owns, what children print, results that contradict
themselves or their series, times as instants, old documents nested without bound, text from
files in figures, where a summary may go, the portable reference checked before the work, a
crash that is never a regression, and advice that works as printed. Children are stand-ins
(tests/standin_run.py) wherever training is beside the point."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bench.judge.verdicts import record_command
from bench.measure.processes import OUTPUT_TAIL_BYTES, ChildFailed, run_child, run_replicate
from bench.storage.baselines import load_baselines, make_baseline, save_baseline, sittings_of
from bench.storage.files import collect, load_result, save_result
from bench.storage.results import RunResult
from tests.conftest import edited
from tests.test_faults import files_in, invoke, one_line_exit_2, smoke
from tests.test_hostile import alive
from tests.test_machines import AVX2_EPYC, on_machine

STANDIN = Path(__file__).parent / "standin_run.py"
STANDIN_PYTHON = f"{sys.executable} {STANDIN}"


@pytest.fixture
def standin_env(monkeypatch):
    """Set STANDIN_* variables for the stand-in children of this test."""

    def setting(**values):
        for name, value in values.items():
            monkeypatch.setenv(f"STANDIN_{name}", str(value))

    return setting


def ab_with_standins(out: Path, *extra):
    """Order seed 7: the first pair runs A, then B."""
    return invoke("ab", "--a-python", STANDIN_PYTHON, "--b-python", STANDIN_PYTHON,
                  "--max-pairs", 2, "--out", out, "--order-seed", 7, *extra)  # fmt: skip


def standin_command(out: Path) -> list[str]:
    return [sys.executable, str(STANDIN), "-m", "bench", "run", "--out", str(out)]


# ---------------------------------------------------------------- 1. what a run owns


def test_a_replicate_is_what_its_child_reports_not_what_appeared_in_the_folder(
    tmp_path, standin_env
):
    standin_env(INTRUDE=1)  # a neighbour writes into the same folder at the same time
    (own,) = run_replicate(standin_command(tmp_path), "replicate 1")
    assert len(files_in(tmp_path)) == 2 and own.parent == tmp_path.resolve()
    assert load_result(own).run_id == own.stem


def test_ab_sees_only_its_own_results_beside_a_neighbour_writing_into_its_folders(
    tmp_path, standin_env
):
    standin_env(INTRUDE=1)
    outcome = ab_with_standins(tmp_path / "ab")
    assert outcome.exit_code == 0, outcome.output
    assert "results per replicate" not in outcome.output
    replicate_lines = [line for line in outcome.output.splitlines() if line[:4].strip().isdigit()]
    assert len(replicate_lines) == 4  # its own four, though eight results landed in A/ and B/
    assert len(files_in(tmp_path / "ab" / "A")) + len(files_in(tmp_path / "ab" / "B")) == 8


@pytest.mark.slow
def test_two_abs_into_one_folder_each_keep_their_own_series(tmp_path):
    first, second = ab_with_standins(tmp_path / "ab"), ab_with_standins(tmp_path / "ab")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    plots = sorted(p.name for p in (tmp_path / "ab").glob("*.png"))
    assert len(plots) == 2 and plots[0].startswith("ab-run-order-g")  # the second, by its group
    report = invoke("report", tmp_path / "ab", "--html", tmp_path / "r.html")
    assert report.exit_code == 0 and "skipped" not in report.output, report.output
    html = (tmp_path / "r.html").read_text()
    assert html.count("<p>B against A:") == 2  # two series of 4 replicates, each judged alone


def test_a_replicate_that_writes_nothing_is_named_with_advice_that_fits(tmp_path, standin_env):
    standin_env(SILENT=1)
    outcome = ab_with_standins(tmp_path / "ab")
    one_line_exit_2(outcome, "variant A, replicate 1", "wrote no result", "standin_run.py")
    assert "one device and one loader" not in outcome.output


def test_a_replicate_that_writes_two_results_is_named(tmp_path, standin_env):
    standin_env(TWICE=1)
    outcome = ab_with_standins(tmp_path / "ab")
    one_line_exit_2(outcome, "variant A, replicate 1 wrote 2 results", "one device and one loader")


@pytest.mark.slow
def test_repeat_counts_only_what_each_replicate_wrote(tiny_mnist, tmp_path):
    """A real `run --repeat 2` into a folder that already holds someone else's result: two
    replicates, the other result neither shown nor counted."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "neighbour.json").write_bytes((Path(__file__).parent / "data" /
                                          "cpu-tiny-result.json").read_bytes())  # fmt: skip
    outcome = smoke(tiny_mnist, out, "--repeat", 2)
    assert outcome.exit_code == 0, outcome.output
    assert f"wrote 2 results to {out}" in outcome.output
    assert "replicate 3" not in outcome.output


# ---------------------------------------------------------------- 2. what children print


def test_a_child_that_prints_bytes_that_are_not_utf8_and_fails_is_one_line(tmp_path, standin_env):
    standin_env(FAIL=1)
    outcome = ab_with_standins(tmp_path / "ab")
    one_line_exit_2(outcome, "variant A, replicate 1: exit 1: last words \ufffd\ufffd")


def test_a_replicate_that_ends_on_a_bug_ends_its_parent_as_a_bug(tmp_path, standin_env):
    standin_env(FAIL=3)  # the exit code of a bug: not bad input, and never a regression
    outcome = ab_with_standins(tmp_path / "ab", "--fail-on-regression")
    assert outcome.exit_code == 3, outcome.output
    assert outcome.output.strip().endswith(
        "variant A, replicate 1: exit 3: last words \ufffd\ufffd"
    )


def test_what_a_child_prints_is_kept_as_a_bounded_tail(tmp_path, standin_env):
    standin_env(SPEW=8)  # 8 MB on each pipe, none of it UTF-8
    printed = run_child(standin_command(tmp_path), timeout_s=120)
    assert len(printed.encode("utf-8", errors="surrogateescape")) <= 3 * OUTPUT_TAIL_BYTES
    assert printed.endswith("\ufffd\ufffd caf\ufffd \ufffd\ufffd\n")
    standin_env(FAIL=1)
    with pytest.raises(ChildFailed, match="exit 1: last words"):
        run_child(standin_command(tmp_path), timeout_s=120)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states")
@pytest.mark.slow
def test_a_process_a_replicate_leaves_behind_holding_its_pipes_is_ended(tmp_path, standin_env):
    """The stand-in leaves a sleeper in its group that holds its stdout and stderr: the
    replicate's result is taken, the sleeper ended (not waited on for its 600 s)."""
    standin_env(DAEMON=tmp_path / "daemon.pid")
    (own,) = run_replicate(standin_command(tmp_path / "out"), "replicate 1")
    assert own.exists()
    assert not alive(int((tmp_path / "daemon.pid").read_text()))


# ---------------------------------------------------------------- 3. results that disagree


def test_ab_refuses_a_replicate_of_another_experiment_naming_the_field(tmp_path, standin_env):
    standin_env(COUNTER=tmp_path / "calls", LR_AFTER=3)  # the 3rd child (pair 2: A first)
    outcome = ab_with_standins(tmp_path / "ab")
    one_line_exit_2(outcome, "variant A", "is not a replicate of", "lr 0.01≠0.001")


@pytest.mark.slow
def test_the_report_refuses_an_ab_folder_with_another_experiment_mixed_in(
    template, tmp_path, standin_env
):
    assert ab_with_standins(tmp_path / "ab").exit_code == 0
    group = load_result(next((tmp_path / "ab" / "B").glob("*.json"))).group
    stranger = edited(template, {"run_id": "stranger", "config.lr": 0.01, "group": group})
    save_result(stranger, tmp_path / "ab" / "A")
    outcome = invoke("report", tmp_path / "ab", "--html", tmp_path / "report.html")
    assert outcome.exit_code == 0, outcome.output
    assert "not judged as an A/B: variant A: stranger.json is not a replicate" in outcome.output
    assert "(lr 0.01≠0.001)" in outcome.output


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        # AVX-512 kernels on a CPU whose flags have no AVX-512
        ({"environment.cpu.flags": ["avx2", "fma"]}, "math.capability 'AVX512' needs AVX512"),
        # oneDNN's AMX on a CPU without AMX
        ({"environment.math.onednn_isa": "Intel AVX-512 with Intel AMX"}, "math.onednn_isa"),
        # "not disturbed" while its own samples show 1.9 other cores busy on 2
        ({"disturbance.disturbed": False, "disturbance.reasons": []}, "disturbed False"),
        # "disturbed" on an idle machine
        ({"disturbance.other_cpu_cores": 0.0}, "disturbed True contradicts"),
        # samples of 2 cores on a machine that claims 64
        ({"environment.cpu_count": 64}, "disturbance.cores 2 but environment.cpu_count 64"),
    ],
)
def test_a_result_whose_machine_fields_contradict_each_other_is_skipped_naming_them(
    template, tmp_path, changes, field
):
    document = template.to_dict()
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        target[last] = value
    (tmp_path / "r.json").write_text(json.dumps(document))
    results, problems = collect([tmp_path])
    assert not results and field in problems[0][1], problems


# ---------------------------------------------------------------- 4. times


def at(template: RunResult, run_id: str, created: str) -> RunResult:
    return edited(template, {"run_id": run_id, "created_utc": created, "group": None})


def test_times_with_other_offsets_sort_as_the_instants_they_are(template, tmp_path):
    """Runs 8 minutes apart, one written in +05:00: one sitting (as text, the +05:00 time
    sorts last and splits it in two)."""
    runs = [
        at(template, "r1", "2026-11-30T10:00:00+00:00"),
        at(template, "r2", "2026-11-30T15:08:00+05:00"),
        at(template, "r3", "2026-11-30T10:16:00Z"),
    ]
    assert sittings_of(runs) == [0, 0, 0]
    assert runs[1].created_utc == "2026-11-30T10:08:00+00:00"  # held as the UTC instant
    for run in runs:
        save_result(run, tmp_path)
    assert sorted(r.created_utc for _, r in collect([tmp_path])[0]) == [
        "2026-11-30T10:00:00+00:00", "2026-11-30T10:08:00+00:00", "2026-11-30T10:16:00+00:00"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "created",
    ["0001-01-01T00:00:00+00:00", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-05:00"],
)
def test_times_at_the_ends_of_the_calendar_are_refused_never_a_crash_nor_exit_1(
    template, tmp_path, created
):
    save_baseline(make_baseline([template]), tmp_path / "baselines")
    document = template.to_dict() | {"created_utc": created}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r.json").write_text(json.dumps(document))
    outcome = invoke("compare", tmp_path / "runs", "--baseline", tmp_path / "baselines",
                     "--fail-on-regression")  # fmt: skip
    one_line_exit_2(outcome, "no usable results")
    assert "outside the years 1970–2999" in outcome.output
    baseline = json.loads(next((tmp_path / "baselines").glob("*.json")).read_text())
    baseline["runs"][0]["started_utc"] = created
    next((tmp_path / "baselines").glob("*.json")).write_text(json.dumps(baseline))
    save_result(template, tmp_path / "runs2")
    outcome = invoke("compare", tmp_path / "runs2", "--baseline", tmp_path / "baselines",
                     "--fail-on-regression")  # fmt: skip
    assert outcome.exit_code == 2 and "outside the years" in outcome.output, outcome.output


# ---------------------------------------------------------------- 5. old documents


def with_nested(document: dict, key: str, depth: int) -> str:
    """`document` as JSON text, `key` holding a value nested `depth` arrays deep (written as
    text: json.dumps itself could not nest that deep)."""
    text = json.dumps(document | {key: "NESTED"})
    return text.replace('"NESTED"', "[" * depth + '"deep"' + "]" * depth)


@pytest.mark.parametrize("depth", [100, 900, 5000])
def test_a_deeply_nested_old_document_is_skipped_with_its_reason(template, tmp_path, depth):
    """Schema 1 files are upgraded (a copy, then validation): nested deeper than anything the
    harness writes, they are refused by the parser (past 200 levels) or before and after each
    step, the rest compared."""
    old = template.to_dict() | {"schema_version": 1, "run_id": "old"}
    del old["arithmetic"]
    (tmp_path / "old.json").write_text(with_nested(old, "notes", depth))
    baseline = {"baseline_schema_version": 1, "name": "x"}
    (tmp_path / "old-baseline.json").write_text(with_nested(baseline, "runs", depth))
    current = template.to_dict() | {"run_id": "current"}
    (tmp_path / "current.json").write_text(with_nested(current, "notes", depth))
    save_result(template, tmp_path)
    results, problems = collect([tmp_path])
    assert [r.run_id for _, r in results] == [template.run_id]
    too_deep = "recursion limit" if depth > 200 else "nested"
    assert too_deep in dict(problems)[tmp_path / "old.json"]
    refused = dict(problems)[tmp_path / "current.json"]
    assert re.search("recursion limit|nested|valid string", refused)
    _, baseline_problems = load_baselines(tmp_path)
    assert too_deep in dict(baseline_problems)[tmp_path / "old-baseline.json"]
    outcome = invoke("compare", tmp_path)
    assert outcome.exit_code == 0 and "Traceback" not in outcome.output, outcome.output


# ---------------------------------------------------------------- 6. text in figures


@pytest.mark.slow
def test_dollar_signs_from_files_are_text_in_plots_and_the_html_report(template, tmp_path):
    odd = edited(template, {"run_id": "run-$\\frac{$-x", "environment.device_name": "cpu $_$^"})
    save_result(odd, tmp_path / "runs")
    plot = invoke("compare", tmp_path / "runs", "--plot", tmp_path / "cmp.png")
    assert plot.exit_code == 0, plot.output
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    html = invoke("report", tmp_path / "runs", "--html", tmp_path / "r.html")
    assert html.exit_code == 0, html.output
    assert "cpu $_$^" in (tmp_path / "r.html").read_text()


# ---------------------------------------------------------------- 7. where a summary may go


def test_a_summary_is_never_appended_to_a_file_being_compared(template, tmp_path):
    path = save_result(template, tmp_path)
    before = path.read_bytes()
    one_line_exit_2(invoke("compare", tmp_path, "--summary", path), str(path), ".json")
    plain = tmp_path / "notes.txt"
    plain.write_text("a run's notes, given as an input\n")
    outcome = invoke("compare", tmp_path, plain, "--summary", plain)
    one_line_exit_2(outcome, "one of the files being compared")
    assert path.read_bytes() == before and plain.read_text() == "a run's notes, given as an input\n"
    binary = tmp_path / "cmp.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    one_line_exit_2(invoke("compare", tmp_path, "--summary", binary), "not a text file")
    both = tmp_path / "both.md"
    one_line_exit_2(invoke("compare", tmp_path, "--summary", both, "--plot", both), "other output")
    assert not both.exists()


def test_a_summary_starts_on_a_line_of_its_own(template, tmp_path):
    save_result(template, tmp_path / "runs")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step, no newline")
    assert invoke("compare", tmp_path / "runs", "--summary", summary).exit_code == 0
    lines = summary.read_text().splitlines()
    assert lines[0] == "earlier step, no newline" and lines[1].startswith("## mnist-bench compare")


# ---------------------------------------------------------------- 8. the portable reference


def reference_with(tmp_path: Path, change) -> Path:
    document = json.loads((Path(__file__).parent.parent / "results" /
                           "portable-digests.json").read_text())  # fmt: skip
    change(document)
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (lambda d: None, ["--seeds", "0,7"], "--seeds 7: not in the reference"),
        (lambda d: d["digests"].update({"seven": "0" * 64}), [], "digests.seven.[key]"),
        (lambda d: d["digests"].update({"007": "0" * 64}), [], "digests.007.[key]"),
        (lambda d: None, ["--epochs", "1"], "epochs 1≠5"),
        (lambda d: d.update(torch="1.0.0"), [], "the reference was made with torch 1.0.0"),
    ],
)
def test_the_portable_reference_is_checked_before_any_training(
    tiny_mnist, tmp_path, change, args, message
):
    reference = reference_with(tmp_path, change)
    out = tmp_path / "out"
    outcome = invoke("verify-portable", "--reference", reference, "--data-dir", tiny_mnist,
                     "--out", out, *args)  # fmt: skip
    one_line_exit_2(outcome, message)
    assert not out.exists() and "seed 0:" not in outcome.output  # nothing ran


# ---------------------------------------------------------------- 9. a crash is not a regression


def test_a_crash_in_the_gate_exits_3_never_1(template, tmp_path, monkeypatch):
    save_result(template, tmp_path / "runs")
    save_baseline(make_baseline([template]), tmp_path / "baselines")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr("bench.judge.compare.judge_run", broken)
    outcome = invoke("compare", tmp_path / "runs", "--baseline", tmp_path / "baselines",
                     "--fail-on-regression")  # fmt: skip
    assert outcome.exit_code == 3, outcome.output
    assert (
        "internal error (a bug" in outcome.output and "ZeroDivisionError: planted" in outcome.output
    )
    Path(outcome.output.strip().rsplit("traceback in ", 1)[1]).unlink()


def test_a_crash_in_a_process_exits_3_with_one_line(tmp_path):
    """Through the real entry point: a result folder that cannot be listed past a planted
    bug is one line, exit 3 (here the bug is planted through sitecustomize)."""
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(
        "import bench.jobs\n"
        "def broken(*a, **k):\n    raise RuntimeError('planted bug')\n"
        "bench.jobs.compare_paths = broken\n"
    )
    env = os.environ | {"PYTHONPATH": f"{plant}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "bench", "compare", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    log = Path(done.stderr.strip().rsplit("traceback in ", 1)[1])
    assert "planted bug" in log.read_text()
    log.unlink()


# ---------------------------------------------------------------- 10. baselines per machine


def test_two_machines_keep_baselines_of_one_experiment_side_by_side(template, tmp_path):
    other = on_machine(template, AVX2_EPYC, "AVX2")
    other.run_id = "other-machine"
    here_path = save_baseline(make_baseline([template]), tmp_path)
    there_path = save_baseline(make_baseline([other]), tmp_path)
    assert here_path != there_path and {p.name for p in tmp_path.iterdir()} == {
        here_path.name,
        there_path.name,
    }
    assert "amd-f25-m1-s1-avx2" in there_path.name and "amd-f25-m17-s1-avx512" in here_path.name
    taken = make_baseline([other], name=here_path.stem)
    with pytest.raises(ValueError, match="baseline of another machine.*give this one another"):
        save_baseline(taken, tmp_path, force=True)
    assert load_baselines(here_path)[0][0].hardware.isa == "AVX512"  # not replaced


def test_the_record_command_quotes_what_came_from_a_file(template):
    """An optimizer name from a file that is a shell command: pasted, it stays one argument."""
    odd = on_machine(edited(template, {"config.optimizer": "adam; touch pwned"}), AVX2_EPYC, "AVX2")
    words = shlex.split(record_command(odd))
    assert words[words.index("--optimizer") + 1] == "adam; touch pwned"
    assert words.count("&&") == 1 and words[-3:-1] == ["baseline", "save"]


@pytest.mark.slow
def test_the_record_command_it_suggests_works_as_printed(tiny_mnist, tmp_path, monkeypatch):
    """A run of this machine, a baseline of its experiment only from another machine: compare
    prints how to record one here; run exactly that, and the run has its baseline."""
    smoke(tiny_mnist, tmp_path / "runs")
    (run,) = (load_result(p) for p in (tmp_path / "runs").glob("*.json"))
    elsewhere = copy.deepcopy(run)
    elsewhere.environment = dataclasses.replace(
        elsewhere.environment,
        cpu=dataclasses.replace(elsewhere.environment.cpu, model=99, stepping=9),
    )
    save_baseline(make_baseline([elsewhere]), tmp_path / "results" / "baselines")
    monkeypatch.chdir(tmp_path)  # the printed folders are relative, as a user's would be
    outcome = invoke("compare", "runs")
    assert "no baseline for this machine" in outcome.output, outcome.output
    printed = " ".join(outcome.output.split("record one with: ", 1)[1].split())
    printed = printed.split(" mnist-bench baseline save ")
    commands = [
        printed[0].removesuffix(" &&"),
        "mnist-bench baseline save " + printed[1].split()[0],
    ]
    env = os.environ | {"MNIST_BENCH_DATA": str(tiny_mnist), "COLUMNS": "250"}
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "mnist-bench"
        done = subprocess.run([sys.executable, "-m", "bench", *words[1:]], capture_output=True,
                              text=True, env=env, timeout=600)  # fmt: skip
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    again = invoke("compare", "runs")
    assert "no baseline for this machine" not in again.output, again.output
    assert len(list((tmp_path / "results" / "baselines").glob("*.json"))) == 2
