import json
import signal
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.storage.files import load_result
from bench.storage.results import SCHEMA_VERSION

runner = CliRunner(env={"COLUMNS": "250"})


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def smoke_run(data, out, *extra):
    return invoke(
        "run",
        "-d",
        "cpu",
        "--epochs",
        2,
        "--max-steps",
        3,
        "--data-dir",
        data,
        "--out",
        out,
        "--no-download",
        *extra,
    )


@pytest.mark.slow
def test_run_writes_result_and_plot(tiny_mnist, tmp_path):
    out = tmp_path / "results"
    result = smoke_run(tiny_mnist, out, "--target-acc", 1, "--plot")
    assert result.exit_code == 0, result.output
    (json_path,) = out.glob("*.json")
    (png_path,) = out.glob("*-loss.png")
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = load_result(json_path)
    assert stored.config.device == "cpu" and len(stored.epochs) == 2
    assert len(stored.step_losses) == 6
    assert stored.summary.epochs_to_target == 1
    assert stored.summary.time_to_target_s == pytest.approx(stored.epochs[0].train_s)
    assert stored.environment.torch == torch.__version__
    assert stored.model.train_flops_per_sample > 0
    assert stored.data.canonical is False
    undisturbed = [note for note in stored.notes if not note.startswith("disturbed:")]
    assert undisturbed == ["the data is not the canonical MNIST (a subset or other IDX files)"]
    assert "Summary" in result.output and "Per epoch" in result.output
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_same_seed_twice_gives_the_same_weights_digest(tiny_mnist, tmp_path):
    for name in ("a", "b"):
        assert smoke_run(tiny_mnist, tmp_path / name).exit_code == 0
    (a,) = (tmp_path / "a").glob("*.json")
    (b,) = (tmp_path / "b").glob("*.json")
    assert load_result(a).weights_sha256 == load_result(b).weights_sha256


@pytest.mark.slow
def test_both_loaders_in_one_run_give_identical_weights(tiny_mnist, tmp_path):
    result = smoke_run(
        tiny_mnist, tmp_path, "-d", "cpu", "--loader", "torchvision", "--loader", "tensor"
    )
    assert result.exit_code == 0, result.output
    first, second = (load_result(p) for p in tmp_path.glob("*.json"))
    assert {first.config.loader, second.config.loader} == {"tensor", "torchvision"}
    # CPU defaults (channels-last, fused Adam) apply to both loaders: still bitwise the same.
    assert first.config.channels_last and first.config.optimizer == "adam-fused"
    assert first.weights_sha256 == second.weights_sha256
    assert "Side by side (speed-up vs cpu torchvision)" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "cuda"], "CUDA is not available"),
        (["-d", "tpu"], "unknown device"),
        (["--epochs", "0"], "--epochs 0: Input should be greater than or equal to 1"),
        (["--batch-size", "-5"], "--batch-size -5: Input should be greater than or equal to 1"),
        (["--lr", "0"], "--lr 0.0: Input should be greater than 0"),
        (["-d", "cpu", "--precision", "tf32"], "--precision tf32 needs CUDA; the CPU trains in"),
        (["-d", "cpu", "--optimizer", "adam-capturable"], "adam-capturable needs a CUDA device"),
    ],
)
def test_bad_options_end_in_one_line_and_exit_2(tiny_mnist, tmp_path, args, message):
    out = tmp_path / "out"
    result = invoke("run", "--data-dir", tiny_mnist, "--out", out, "--no-download", *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0
    assert not out.exists() or not any(out.iterdir())


def test_missing_data_without_download_says_where_it_looked(tmp_path):
    result = invoke(
        "run",
        "-d",
        "cpu",
        "--data-dir",
        tmp_path / "empty",
        "--out",
        tmp_path / "o",
        "--no-download",
    )
    assert result.exit_code == 2
    assert str(tmp_path / "empty") in result.output and "--data-dir" in result.output


def test_corrupt_data_file_is_named(tiny_mnist, tmp_path):
    (tiny_mnist / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    result = smoke_run(tiny_mnist, tmp_path / "o")
    assert result.exit_code == 2 and "train-labels-idx1-ubyte.gz" in result.output
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.json"))


def test_unwritable_output_is_refused_before_training(tiny_mnist, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = smoke_run(tiny_mnist, blocker / "results")
    assert result.exit_code == 2 and "cannot write results" in result.output
    assert "epoch 1" not in result.output


@pytest.mark.slow
def test_diverging_run_stops_with_a_message_and_no_file(tiny_mnist, tmp_path):
    result = smoke_run(tiny_mnist, tmp_path / "o", "--lr", "1e30")
    assert result.exit_code == 2, result.output
    assert "training loss became" in result.output
    assert not list((tmp_path / "o").glob("*.json"))


def test_env_prints_the_fingerprint():
    result = invoke("env")
    assert result.exit_code == 0 and torch.__version__ in result.output


def test_help_does_not_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from bench.cli import app;"
        "r = CliRunner().invoke(app, ['run', '--help']); assert r.exit_code == 0;"
        "print('torch' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"


@pytest.mark.slow
def test_results_file_is_plain_json_and_says_when_epochs_were_capped(tiny_mnist, tmp_path):
    result = smoke_run(tiny_mnist, tmp_path, "--max-steps", "2")
    assert result.exit_code == 0
    (path,) = tmp_path.glob("*.json")
    payload = json.loads(path.read_text())
    assert payload["schema_version"] == SCHEMA_VERSION and len(payload["confusion"]) == 10
    assert "each epoch trained 2 steps, not the whole training set" in payload["notes"]
    assert "note: each epoch trained 2 steps" in result.output
    assert not list(tmp_path.glob("*.png")), "the plot is drawn only with --plot"


def test_cli_choices_match_the_library():
    # The CLI spells its choices out so that --help needs no torch; they must not drift.
    from bench.cli import Loader, Optimizer, Precision
    from mnist_core import LOADERS, OPTIMIZERS, PRECISIONS

    assert [choice.value for choice in Loader] == list(LOADERS)
    assert [choice.value for choice in Optimizer] == list(OPTIMIZERS)
    assert [choice.value for choice in Precision] == list(PRECISIONS)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_writes_nothing(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "-d",
            "cpu",
            "--epochs",
            "100000",
            "--data-dir",
            str(tiny_mnist),
            "--out",
            str(out),
            "--no-download",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell that starts the tests in the background ignores SIGINT in its children;
        # give this one the default, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    for line in process.stdout:  # wait until training is under way
        if "epoch 1:" in line:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists(), "an interrupted first run leaves no empty folder"


@pytest.mark.slow
def test_ab_runs_interleaved_pairs_in_fresh_processes_until_its_cap(tiny_mnist, tmp_path):
    """Each pair in the order of a seeded coin, recorded in the folder: the seed repeats it."""
    from bench.jobs import pair_orders
    from bench.storage.records import AbRecord

    common = f"-d cpu --epochs 1 --max-steps 2 --data-dir {tiny_mnist} --no-download"
    args = ["ab", "--a", "--loader tensor", "--b", "--loader torchvision", "--common", common]
    result = invoke(*args, "--max-pairs", 2, "--out", tmp_path / "ab", "--fail-on-regression",
                    "--order-seed", 7)  # fmt: skip
    assert result.exit_code == 0, result.output  # inconclusive: no evidence of a regression
    assert "inconclusive" in result.output and "no verdict within 2 pairs" in result.output
    assert "could have missed a slowdown of up to" in result.output
    lines = [line.split()[:2] for line in result.output.splitlines() if line[:4].strip().isdigit()]
    orders = pair_orders(7, 2)
    assert [variant for _, variant in lines] == [f"{v}:" for order in orders for v in order]
    assert AbRecord.read(tmp_path / "ab") == AbRecord(7, 5.0, orders)
    assert "--order-seed 7" in result.output
    assert "pair 1: B vs A" in result.output and "pair 2: B vs A" in result.output
    assert "A: --loader tensor" in result.output  # the table names the variants
    loaders = {
        side: {load_result(p).config.loader for p in (tmp_path / "ab" / side).glob("*.json")}
        for side in "AB"
    }
    assert loaders == {"A": {"tensor"}, "B": {"torchvision"}}
    assert (tmp_path / "ab" / "ab-run-order.png").read_bytes()[:4] == b"\x89PNG"
    strict = invoke(*args, "--max-pairs", 1, "--out", tmp_path / "ab2", "--fail-on-regression",
                    "--strict")  # fmt: skip
    assert strict.exit_code == 2 and "inconclusive (--strict)" in strict.output


@pytest.mark.slow
def test_ab_ends_a_hung_replicate_soon_after_its_cap_not_an_hour_later(tiny_mnist, tmp_path):
    """B's interpreter hangs (a shell sleeping in its place): with a cap of 3 s it is ended
    about a replicate's length past the cap, in one line, A's replicate kept (seed 7: A runs
    first)."""
    common = f"-d cpu --epochs 1 --max-steps 2 --data-dir {tiny_mnist} --no-download"
    outcome = invoke("ab", "--common", common, "--b-python", "sh -c 'sleep 600' hung",
                     "--max-time", 0.05, "--out", tmp_path / "ab", "--order-seed", 7)  # fmt: skip
    assert outcome.exit_code == 2, outcome.output
    assert "variant B, replicate 2: still running after" in outcome.output
    assert len(list((tmp_path / "ab" / "A").glob("*.json"))) == 1


@pytest.mark.slow
def test_ab_lets_a_slower_variant_finish_its_first_pair_past_a_small_cap(tiny_mnist, tmp_path):
    """B starts 2 s later than A (an interpreter slower to start): not hung, though its first
    replicate ends past a 3 s cap; the pair is judged, inconclusive."""
    common = f"-d cpu --epochs 1 --max-steps 2 --data-dir {tiny_mnist} --no-download"
    slower = f"sh -c 'sleep 2; exec {sys.executable} \"$@\"' slower"
    outcome = invoke("ab", "--common", common, "--b-python", slower, "--max-time", 0.05,
                     "--out", tmp_path / "ab", "--order-seed", 7)  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "inconclusive" in outcome.output
    assert len(list((tmp_path / "ab" / "B").glob("*.json"))) == 1


@pytest.mark.slow
def test_repeat_runs_replicates_in_fresh_processes_as_one_group(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    shown = smoke_run(tiny_mnist, out, "--repeat", 2, "--loader", "tensor")
    assert shown.exit_code == 0, shown.output
    assert "replicate 2/2" in shown.output and "Replicates · group" in shown.output
    results = sorted((load_result(p) for p in out.glob("*.json")), key=lambda r: r.replicate)
    assert [(r.replicate, r.config.seed) for r in results] == [(1, 0), (2, 1)]
    assert len({r.group for r in results}) == 1 and results[0].group is not None
    assert all(r.config.max_steps_per_epoch == 3 for r in results)  # the options went along


@pytest.mark.slow
def test_repeat_in_process_with_the_same_seed(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    shown = smoke_run(tiny_mnist, out, "--repeat", 2, "--in-process", "--same-seed")
    assert shown.exit_code == 0, shown.output
    results = [load_result(p) for p in out.glob("*.json")]
    assert {r.config.seed for r in results} == {0} and len({r.group for r in results}) == 1
    assert len({r.weights_sha256 for r in results}) == 1
    assert "1 distinct" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repeat", 0], "--repeat 0: Input should be greater than or equal to 1"),
        (["--repeat", 2, "--nproc-per-node", 2], "leave out --nproc-per-node"),
        (["--group", "no spaces/or slashes"], "--group 'no spaces/or slashes': must be 1 to 64"),
    ],
)
def test_bad_repeats_are_refused(tiny_mnist, tmp_path, args, message):
    shown = smoke_run(tiny_mnist, tmp_path / "out", *args)
    assert shown.exit_code == 2 and message in shown.output
