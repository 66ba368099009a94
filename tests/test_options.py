"""Each command's options are checked as fields before any work: one line naming the option
and its value, exit 2, nothing written. A bug (an error the project does not raise itself)
is not dressed up as the user's mistake."""

from pathlib import Path

import pytest

from bench.config.options import RunRequest, from_options
from bench.config.settings import RunConfig
from bench.errors import ConfigError
from tests.test_cli import invoke
from tests.test_faults import one_line_exit_2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--epochs", 0], "--epochs 0: Input should be greater than or equal to 1"),
        (["run", "--dist-timeout", "0.01"], "--dist-timeout 0.01: Input should be greater"),
        (["run", "--nproc-per-node", 0], "--nproc-per-node 0: Input should be greater"),
        (["run", "--portable", "-d", "cuda"], "--portable pins the CPU's arithmetic"),
        (["run", "--portable", "-d", "cpu", "--threads", 2], "not --threads 2"),
        (["run", "--seed", 2**63 - 1, "--repeat", 2], "runs past the largest seed"),
        (["sweep", "--batch-sizes", "100,x"], "--batch-sizes '100,x': must be comma-separated"),
        (["sweep", "--batch-sizes", "100,0"], "--batch-sizes 0: Input should be greater"),
        (["sweep", "--threads", ","], "--threads ','"),
        (["sweep", "--steps", 0], "--steps 0:"),
        (["ab", "--max-pairs", 0], "--max-pairs 0:"),
        (["ab", "--max-time", 0], "--max-time 0.0: Input should be greater than 0"),
        (["ab", "--margin", 50], "--margin 50.0: Input should be less than 50"),
        (["ab", "--a", "'unclosed"], '--a "\'unclosed": cannot be split into arguments'),
        (["ab", "--b-python", '"'], "--b-python '\"': cannot be split"),
        (["ab", "--a-python", " "], "--a-python ' ': Value should have at least 1 item"),
        (["verify-portable", "--seeds", "-1"], "--seeds -1: Input should be greater"),
        (["verify-portable", "--reference", "nowhere.json"], "no reference digests at"),
        (["compare", "x", "--throughput-tolerance", 50], "--throughput-tolerance 50.0:"),
        (["compare", "x", "--assumed-drift", -1], "--assumed-drift -1.0:"),
    ],
)
def test_a_bad_option_is_one_line_naming_it_and_nothing_is_written(tmp_path, args, message):
    out = tmp_path / "out"
    takes_out = args[0] != "compare"
    outcome = invoke(*args, *(["--out", out] if takes_out else []))
    one_line_exit_2(outcome, message)
    assert not out.exists()


def test_replicate_seeds_run_on_from_the_seed_unless_the_same_seed_is_asked_for(tmp_path):
    def request(**modes):
        config = RunConfig(device="", seed=7)
        return RunRequest(
            config=config, devices=["cpu"], loaders=["tensor"], out_dir=tmp_path, **modes
        )

    assert request(repeat=3).seeds == [7, 8, 9]
    assert request(repeat=3, same_seed=True).seeds == [7, 7, 7]
    assert request().seeds == [7]


def test_a_field_named_otherwise_than_its_option_is_shown_as_the_option():
    with pytest.raises(ConfigError, match=r"^--max-steps 0: "):
        from_options(RunConfig, device="", max_steps_per_epoch=0)


def test_an_error_the_project_did_not_raise_is_a_bug_not_bad_input(monkeypatch, tmp_path):
    """An OSError from deep inside (here: planted) is a bug: neither 'bad input' (2) nor, with
    --fail-on-regression, 'regression' (1), but exit 3 with one line that names the log holding
    its traceback."""

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("bench.jobs.compare_paths", broken)
    outcome = invoke("compare", tmp_path, "--fail-on-regression")
    assert outcome.exit_code == 3, outcome.output
    (line,) = outcome.output.strip().splitlines()
    assert line.startswith("error: internal error (a bug") and "Input/output error" in line
    log = Path(line.rsplit("traceback in ", 1)[1])
    assert "Traceback" in log.read_text() and "OSError" in log.read_text()
    log.unlink()


LONG = "n" * 300  # longer than any file name may be: every stat of it fails


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", LONG], "no usable results"),
        (["compare", ".", "--baseline", LONG], "File name too long"),
        (["report", ".", "--html", "r.html", "--baseline", LONG], "File name too long"),
        (["run", "-d", "cpu", "--out", f"{LONG}/x"], "cannot write results to"),
        (["run", "-d", "cpu", "--data-dir", LONG, "--out", "o"], "cannot be searched"),
        (["sweep", "-d", "cpu", "--out", LONG], "cannot write results to"),
        (["verify-portable", "--reference", LONG], "--reference"),
        (["baseline", "save", LONG], "File name too long"),
    ],
)
def test_a_path_the_system_refuses_is_one_line_naming_it(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    one_line_exit_2(invoke(*args), message)


def test_the_options_given_anew_to_each_replicate_are_options_of_run():
    """`run --repeat` passes the command line on less these, which each replicate is given
    anew: were one misnamed, it would reach the replicate twice."""
    from typer.main import get_command

    from bench.cli import app
    from bench.jobs import PER_REPLICATE

    run = get_command(app).commands["run"]
    assert {"nproc_per_node", *PER_REPLICATE} <= {param.name for param in run.params}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--epochs", "abc"], "Invalid value for '--epochs'"),
        (["run", "--bogus"], "No such option: --bogus"),
        (["run", "--loader", "x"], "'x' is not one of 'tensor', 'torchvision'"),
        (["compare"], "Missing argument 'PATH'"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_a_usage_error_is_one_line_naming_where_help_is(args, message):
    one_line_exit_2(invoke(*args), message, "--help)")


def test_no_command_shows_the_help_not_an_error():
    outcome = invoke()
    assert "Commands:" in outcome.output and "error:" not in outcome.output
