"""Portable mode: the pinned arithmetic path in a fresh process, and its reference digests."""

import copy
import dataclasses
import json

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.config.settings import PORTABLE_ENVIRONMENT
from bench.judge.portable import CANNOT_JUDGE, DIFFERENT, REPRODUCED, judge_portable
from bench.storage.portable import PortableDigests, load_portable_digests
from tests.conftest import REPO_ROOT
from tests.test_faults import invoke, one_line_exit_2

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["-d", "cuda"], "--portable pins the CPU's arithmetic: give -d cpu"),
        (["-d", "cpu", "--threads", "2"], "--portable runs 1 thread, not --threads 2"),
        (["-d", "cpu", "--nproc-per-node", "2"], "leave out --nproc-per-node"),
    ],
)
def test_portable_mode_refuses_what_it_cannot_pin(options, complaint):
    outcome = runner.invoke(app, ["run", "--portable", *options])
    assert outcome.exit_code == 2 and complaint in outcome.output


def portable_reference(result, **changes) -> PortableDigests:
    reference = PortableDigests(
        recorded_utc="2026-11-30T07:00:00+00:00",
        torch=result.environment.torch,
        torch_git=result.environment.math.torch_git,
        machine="AuthenticAMD family 25 model 1 stepping 1, ATen DEFAULT",
        config=dataclasses.replace(result.config),
        data_sha256=result.data.sha256,
        digests={str(result.config.seed): result.weights_sha256},
    )
    return dataclasses.replace(reference, **changes)


@pytest.fixture
def portable_run(template):
    result = copy.deepcopy(template)
    result.environment.math.portable = True
    return result


def test_the_verdict_is_bit_for_bit_and_says_when_it_cannot_judge(portable_run):
    reference = portable_reference(portable_run)
    assert judge_portable(reference, [portable_run]).verdict == REPRODUCED
    other = portable_reference(portable_run, digests={"0": "0" * 64})
    judged = judge_portable(other, [portable_run])
    assert judged.verdict == DIFFERENT and "seed(s) 0" in judged.reason
    newer = portable_reference(portable_run, torch="2.16.0")
    judged = judge_portable(newer, [portable_run])
    assert judged.verdict == CANNOT_JUDGE and "the same torch build" in judged.reason
    native = copy.deepcopy(portable_run)
    native.environment.math.portable = False
    assert judge_portable(reference, [native]).verdict == CANNOT_JUDGE


def test_the_committed_reference_is_the_default_experiment_in_portable_mode():
    reference = load_portable_digests(REPO_ROOT / "results" / "portable-digests.json")
    assert sorted(reference.digests) == ["0", "1", "2", "3", "4"]
    assert reference.config.epochs == 5 and reference.config.max_steps_per_epoch is None
    assert reference.config.threads == 1 and reference.config.loader == "tensor"


@pytest.mark.slow
def test_a_portable_run_pins_its_knobs_and_verify_portable_checks_the_bits(tiny_mnist, tmp_path):
    reference = tmp_path / "digests.json"
    common = ["--seeds", "0", "--data-dir", str(tiny_mnist), "--epochs", "1", "--max-steps", "2"]
    common += ["--reference", str(reference)]
    recorded = runner.invoke(
        app, ["verify-portable", *common, "--record", "--out", str(tmp_path / "a")]
    )
    assert recorded.exit_code == 0, recorded.output
    assert "verdict: reproduced" in recorded.output
    (path,) = (tmp_path / "a").glob("*.json")
    result = json.loads(path.read_text())
    math = result["environment"]["math"]
    assert math["portable"] is True and math["capability"] == "DEFAULT"
    assert PORTABLE_ENVIRONMENT.items() <= math["knobs"].items()
    assert result["environment"]["threads"] == 1 and result["config"]["threads"] == 1
    again = runner.invoke(app, ["verify-portable", *common, "--out", str(tmp_path / "b")])
    assert again.exit_code == 0 and "reproduced" in again.output, again.output
    tampered = json.loads(reference.read_text())
    tampered["digests"]["0"] = "0" * 64
    reference.write_text(json.dumps(tampered))
    differs = runner.invoke(app, ["verify-portable", *common, "--out", str(tmp_path / "c")])
    assert differs.exit_code == 1 and "verdict: DIFFERENT" in differs.output


def test_a_reference_that_cannot_be_written_fails_before_any_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    outcome = invoke("verify-portable", "--record", "--reference", blocker / "ref.json",
                     "--seeds", "0", "--out", tmp_path / "runs")  # fmt: skip
    one_line_exit_2(outcome, "a-file is a file, not a folder")
    assert not (tmp_path / "runs").exists()  # no run was started


def test_a_reference_that_is_a_folder_fails_before_any_run(tmp_path):
    folder = tmp_path / "references"
    folder.mkdir()
    outcome = invoke("verify-portable", "--record", "--reference", folder,
                     "--seeds", "0", "--out", tmp_path / "runs")  # fmt: skip
    one_line_exit_2(outcome, "references: a folder, not a file")
    assert not (tmp_path / "runs").exists()  # no run was started
