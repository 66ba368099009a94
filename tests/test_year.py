"""A year of results (scripts/synthetic_year.py, built from the committed real result): change
points where the year has them and none where it drifts only, `compare` and the report
bounded and readable, the results index derived and never trusted over the files."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bench.cli import app
from bench.judge.history import histories
from bench.storage.files import collect
from bench.storage.index import INDEX_ENV, collect_figures, index_path
from scripts.synthetic_year import build_year
from tests.conftest import COMMITTED_RESULT

runner = CliRunner(env={"COLUMNS": "250"})

# A synthetic year of results per module: seconds each, so all of them are in the slow set.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """300 runs: 100 sittings of 3 (50 a machine), the step at sitting 68, the second
    machine's own step at sitting 31, and 40 files that are not results."""
    return build_year(tmp_path_factory.mktemp("year") / "results", 300, unreadable=40)


@pytest.fixture
def private_index(tmp_path, monkeypatch):
    path = tmp_path / "index.sqlite3"
    monkeypatch.setenv(INDEX_ENV, str(path))
    return path


def test_the_years_steps_are_found_where_they_are_and_named(year, private_index):
    results, problems = collect_figures([year.folder])
    assert len(results) == 300 and len(problems) == 40
    first, second = histories([result for _, result in results], [], 10.0)
    # Each machine has every other sitting: the step's sitting among its own is half of it.
    assert [c.first_sitting for c in first.change_points] == [year.step_sitting // 2]
    (step,) = first.change_points
    assert step.change_pct == pytest.approx(-15, abs=3) and step.code_changed
    machine, code = second.change_points
    assert abs(machine.first_sitting - year.machine_step_sitting // 2) <= 1
    assert machine.change_pct == pytest.approx(20, abs=4)
    assert machine.commits.endswith("the machine changed, not the code")
    assert code.change_pct == pytest.approx(-15, abs=4) and code.code_changed


def test_a_year_that_only_drifts_has_no_change_point(tmp_path, private_index):
    drifting = build_year(tmp_path / "drift", 300, drift_only=True, seed=3)
    results, _ = collect_figures([drifting.folder])
    for history in histories([result for _, result in results], [], 10.0):
        assert history.change_points == [], history.label


def test_compare_shows_the_latest_sittings_and_says_what_it_left_out(year, private_index):
    shown = runner.invoke(app, ["compare", str(year.folder)])
    assert shown.exit_code == 0, shown.output
    run_lines = [line for line in shown.output.splitlines() if re.match(r"^\d{8}T", line)]
    assert len(run_lines) == 6  # the latest sitting of each machine
    assert "294 runs in 98 earlier sittings left out (--all shows every run)" in shown.output
    # Forty unreadable files: one line, not forty; and one no-baseline note per group.
    assert shown.output.count("skipped") == 1
    assert "skipped 40 unusable files (the first, broken-00000.json" in shown.output
    assert shown.output.count("3 runs like") == 2  # no baseline: one note per machine
    assert shown.output.count("6 runs like") == 1  # disturbed: one note for all

    every = runner.invoke(app, ["compare", str(year.folder), "--all", "--format", "json"])
    assert every.exit_code == 0
    payload = json.loads(every.stdout)
    assert len(payload["runs"]) == 300 and payload["left_out"] is None
    assert len(payload["problems"]) == 40  # each, with its reason, where it is asked for


def test_compare_of_the_year_fits_60_lines_at_80_columns(year, private_index, monkeypatch):
    """What a person sees in a terminal of 80 columns (rich takes TTY_COMPATIBLE for one)."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    captured = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **options: Console(file=captured, **options))
    shown = runner.invoke(app, ["compare", str(year.folder)], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", captured.getvalue() + shown.output)
    # A word longer than the terminal (a data digest in a note) takes the rows it wraps to.
    rows = sum(max(1, -(-len(line) // 80)) for line in text.splitlines())
    assert 10 < rows <= 60, text


def test_the_report_of_a_year_draws_the_latest_sittings_and_collapses_the_rest(
    year, private_index, tmp_path
):
    out = tmp_path / "year.html"
    shown = runner.invoke(app, ["report", str(year.folder), "--html", str(out)])
    assert shown.exit_code == 0, shown.output
    page = out.read_text()
    assert len(page) < 5e6
    assert "the 6 runs of each group&#x27;s latest sitting; 294 runs in 98 earlier" in page
    assert page.count("<details>") == 3  # every sitting of two machines, the skipped files
    assert page.count("broken-") == 40  # each unreadable file with its reason
    assert "skipped 40 unusable files" in shown.output and "skipped broken" not in shown.output
    assert "the machine changed, not the code" in page
    assert "1 change point beyond ±10 %" in page and "2 change points beyond ±10 %" in page


def test_the_index_is_derived_never_trusted_over_a_file(tmp_path, private_index, template):
    year = build_year(tmp_path / "few", 6)
    first, _ = collect_figures([year.folder])
    assert private_index.is_file()
    assert all(result.step_losses == [] for _, result in first)  # figures only
    # A file edited in place (another size) is read again, and a broken one is said to be.
    edited = first[0][0]
    document = json.loads(edited.read_text())
    document["summary"]["steady_train_images_per_s"] = 1234.5
    edited.write_text(json.dumps(document))
    (year.folder / sorted(os.listdir(year.folder))[1]).write_text("{")
    again, problems = collect_figures([year.folder])
    rates = {path: result.summary.steady_train_images_per_s for path, result in again}
    assert rates[edited] == 1234.5 and len(again) == 5 and len(problems) == 1
    # The same results as reading the files alone, losses aside.
    alone, _ = collect([year.folder])
    assert [(p, r.run_id, r.summary) for p, r in again] == [
        (p, r.run_id, r.summary) for p, r in alone
    ]


def test_a_damaged_index_is_a_cache_miss_never_a_crash_or_a_lost_run(tmp_path, private_index):
    """Rows no read wrote (a document that is not a result, a result's row without one) are
    read again from their files, and an index file overwritten with garbage is no index."""
    import sqlite3

    year = build_year(tmp_path / "few", 6)
    alone = [(p, r.run_id, r.summary) for p, r in collect([year.folder])[0]]
    collect_figures([year.folder])
    with sqlite3.connect(private_index) as connection:
        paths = [row[0] for row in connection.execute("SELECT path FROM files ORDER BY path")]
        connection.execute("UPDATE files SET document = '{}' WHERE path = ?", (paths[0],))
        connection.execute("UPDATE files SET document = 'not json' WHERE path = ?", (paths[1],))
        connection.execute(
            "UPDATE files SET kind = NULL, document = NULL WHERE path = ?", (paths[2],)
        )
    connection.close()
    for _ in range(2):  # damaged rows, then the index overwritten past its header
        read, problems = collect_figures([year.folder])
        assert [(p, r.run_id, r.summary) for p, r in read] == alone and problems == []
        data = private_index.read_bytes()
        private_index.write_bytes(data[:100] + os.urandom(len(data) - 100))


def test_without_a_usable_index_the_files_are_read_alone(tmp_path, monkeypatch):
    year = build_year(tmp_path / "few", 3)
    monkeypatch.setenv(INDEX_ENV, "off")
    assert index_path() is None
    assert len(collect_figures([year.folder])[0]) == 3
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(INDEX_ENV, str(blocked / "index.sqlite3"))  # its folder is a file
    assert len(collect_figures([year.folder])[0]) == 3


def test_the_index_lives_in_the_cache_not_beside_the_results(monkeypatch, tmp_path):
    monkeypatch.delenv(INDEX_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert index_path() == Path(tmp_path) / "mnist-bench" / "results-index.sqlite3"


def test_the_years_report_in_chromium_has_a_readable_time_axis(year, private_index, tmp_path):
    """The year's report in headless Chromium: no error, nothing sideways, and a screenshot of
    its history (artifacts/year-history.png) to look at: dates on the axis, not a band."""
    from playwright.sync_api import sync_playwright

    from tests.test_report import ARTIFACTS, CHROMIUM_ARGS, chromium

    executable = chromium()
    out = tmp_path / "year.html"
    assert runner.invoke(app, ["report", str(year.folder), "--html", str(out)]).exit_code == 0
    errors: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(out.as_uri(), wait_until="load")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        ARTIFACTS.mkdir(exist_ok=True)
        history = page.locator("#history figure").first
        history.screenshot(path=str(ARTIFACTS / "year-history.png"))
        box = history.bounding_box()
        browser.close()
    assert errors == [] and overflow <= 0
    assert box is not None and box["height"] < 600  # one figure, not a wall of labels


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_read_what_one_process_reads(year, tmp_path, monkeypatch, workers):
    """A cold index reads the files it lacks in worker processes (64 or more of them, more
    than one CPU): the same results, and the same files skipped for the same reasons (an
    overflowing number among them), as one process reading alone."""
    from bench.storage import index

    overflow = year.folder / "overflow.json"
    overflow.write_text(COMMITTED_RESULT.read_text().replace('"lr": 0.001', '"lr": 1e400', 1))
    try:
        monkeypatch.setattr(index, "_workers", lambda: workers)
        monkeypatch.setenv(INDEX_ENV, str(tmp_path / f"index-{workers}.sqlite3"))
        read, skipped = collect_figures([year.folder])
        alone, alone_skipped = collect([year.folder])
    finally:
        overflow.unlink()
    assert [(p, r.run_id, r.summary) for p, r in read] == [
        (p, r.run_id, r.summary) for p, r in alone
    ]
    assert skipped == alone_skipped and len(skipped) == 41
    assert (overflow, "not strict JSON (a number beyond what a float holds)") in skipped
