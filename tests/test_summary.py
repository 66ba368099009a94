"""CI-friendly output of `compare`: the Markdown summary (verdicts first) and the CSV's group
verdicts."""

import csv
import io

from typer.testing import CliRunner

from bench.cli import app
from bench.storage.baselines import make_baseline, save_baseline
from bench.storage.files import save_result
from tests.test_compare import sittings, variant

runner = CliRunner(env={"COLUMNS": "250"})


def slower_runs(template, tmp_path):
    """A baseline of two sittings; five runs of the same seeds 30 % slower; one seed worse."""
    first = [10_000, 10_100, 9_900, 10_050, 9_950]
    baseline = make_baseline(sittings(template, [first, [1.03 * rate for rate in first]]))
    save_baseline(baseline, tmp_path / "baselines")
    for seed in range(5):
        accuracy = 98.0 + 0.1 * seed - (1.0 if seed == 2 else 0.0)
        result = variant(template, seed=seed, rate=7_000 + 10 * seed, accuracy=accuracy)
        save_result(result, tmp_path / "runs")
    return baseline


def compare(tmp_path, *args):
    return runner.invoke(
        app, ["compare", str(tmp_path / "runs"), "--baseline", str(tmp_path / "baselines"), *args]
    )


def test_the_summary_puts_verdicts_first_and_keeps_what_the_file_held(template, tmp_path):
    slower_runs(template, tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n\n")
    outcome = compare(tmp_path, "--summary", str(summary), "--fail-on-regression")
    assert outcome.exit_code == 1, outcome.output
    text = summary.read_text()
    assert text.startswith("# earlier step\n\n## mnist-bench compare: **regression**\n")
    bullets = [line for line in text.splitlines() if line.startswith("- ")]
    assert "speed slower −30." in bullets[0]
    assert bullets[1] == "- run `cpu-s2-7020-97.2`: less accurate against its seed"
    assert "accuracy" in bullets[2]
    # Then the tables of --format markdown, after every verdict line.
    assert text.index("### Runs") > text.index(bullets[2])
    assert "| cpu-s2-7020-97.2 |" in text


def test_the_summary_says_when_it_cannot_judge(template, tmp_path):
    save_result(variant(template), tmp_path / "runs")
    (tmp_path / "baselines").mkdir()
    summary = tmp_path / "summary.md"
    assert compare(tmp_path, "--summary", str(summary)).exit_code == 0
    first = summary.read_text().splitlines()[0]
    assert first.startswith("## mnist-bench compare: **cannot judge** (run cpu-s0-10000-98.0")


def test_a_summary_that_is_a_folder_is_one_line_and_exit_2(template, tmp_path):
    slower_runs(template, tmp_path)
    outcome = compare(tmp_path, "--summary", str(tmp_path))
    assert outcome.exit_code == 2 and "not a regular file" in outcome.output


def test_the_csv_carries_each_runs_group_verdicts(template, tmp_path):
    baseline = slower_runs(template, tmp_path)
    outcome = compare(tmp_path, "--format", "csv")
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.DictReader(io.StringIO(outcome.stdout)))
    assert len(rows) == 5
    assert {row["group_speed_verdict"] for row in rows} == {"slower"}
    assert all(row["group_speed"].startswith("slower −30.") for row in rows)
    assert {row["group_accuracy_verdict"] for row in rows} <= {"ok", "inconclusive"}
    assert {row["group"] for row in rows} == {rows[0]["group"]} and rows[0]["group"]
    assert baseline.name in {row["baseline"] for row in rows}
