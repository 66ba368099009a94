import dataclasses

from typer.testing import CliRunner

from bench.cli import app
from bench.show.reproduction import reproduction_report
from bench.storage.files import save_result
from tests.conftest import edited


def with_accuracies(template, seed, accuracies, digest="same"):
    epochs = [
        dataclasses.replace(template.epochs[0], epoch=number, test_accuracy_pct=accuracy)
        for number, accuracy in enumerate(accuracies, 1)
    ]
    return edited(
        template,
        {
            "run_id": f"run-s{seed}-{digest}-{len(accuracies)}",
            "config.seed": seed,
            "config.epochs": len(accuracies),
            "weights_sha256": digest,
            "epochs": epochs,
        },
    )


def test_report_states_the_claim_against_the_seeds(template):
    runs = [
        with_accuracies(template, 0, [97.0, 98.0, 98.5, 99.0, 99.1], "a"),
        with_accuracies(template, 1, [97.0, 98.0, 98.9, 98.8, 98.9], "b"),
        with_accuracies(template, 0, [97.0, 98.0, 98.5, 99.0, 99.1], "a"),  # the rerun
    ]
    text = reproduction_report(runs)
    assert "| 4 | 98.90 ± 0.14 |" in text
    assert "reached 99%: 1 of 2 seeds (seed 0: epoch 4)" in text
    assert "1 rerun seed(s): weights bitwise identical" in text
    assert "verdict on the claim: reproduced: mean test accuracy after epoch 4 is 98.90%" in text


def test_report_flags_a_rerun_that_differs_and_a_short_run(template, tmp_path):
    for result in (
        with_accuracies(template, 0, [97.0, 98.0], "a"),
        with_accuracies(template, 0, [97.0, 98.0], "b"),
    ):
        save_result(result, tmp_path)
    shown = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "R.md")])
    assert shown.exit_code == 0, shown.output
    assert "weights DIFFERED" in shown.output
    assert "not tested (only 2 epochs)" in shown.output
    assert (tmp_path / "R.md").read_text() in shown.output


def test_the_report_groups_by_experiment_identity_not_by_device(template):
    """Two loaders of one seed are two implementations, not a rerun; runs of another length
    are another experiment, not more seeds."""
    tensor = with_accuracies(template, 0, [97.0, 98.0, 98.5, 99.0, 99.1], "a")
    torchvision = with_accuracies(template, 0, [97.0, 98.0, 98.5, 99.0, 99.1], "b")
    torchvision.run_id += "-tv"
    torchvision.config.loader = "torchvision"
    shorter = with_accuracies(template, 1, [97.0, 98.0], "c")  # 2 epochs, not 5
    text = reproduction_report([tensor, torchvision, shorter])
    assert "rerun seed(s)" not in text and text.count("no seed was rerun") == 3
    assert text.count("### ") == 3
    assert "· torchvision " in text and "· tensor " in text
    assert "not tested (only 2 epochs)" in text
