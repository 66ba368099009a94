"""`report --html`: the file parsed for its sections, figures and figures' numbers, and opened in
headless Chromium. Inputs: the committed baselines, a fresh run, results built from a real one at
three commits (the last 20 % slower), their CUDA twins, and an `ab` folder."""

import base64
import csv
import io
import math
import os
import shutil
import statistics
from datetime import UTC, datetime, timedelta
from functools import partial
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.judge.stats import Verdict
from bench.show.tables import fmt_rate
from bench.storage.baselines import make_baseline, save_baseline
from bench.storage.files import save_result
from tests.conftest import REPO_ROOT
from tests.test_compare import cuda_twin, sittings, variant
from tests.test_history import commits

runner = CliRunner()
COMMITTED_BASELINES = REPO_ROOT / "results" / "baselines"
HOSTILE = '<script>alert("os")</script>'
RATES = [
    [10_000, 10_100, 9_900, 10_050],
    [10_200, 10_000, 10_100, 9_950],
    [8_000, 8_100, 7_900, 8_050],
]
AB_ORDER = "ABBAABBA"


class Page(HTMLParser):
    """The parts of the report a test reads: sections (text and table rows), images, tags."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.order: list[str] = []
        self.text: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.images: list[tuple[str | None, dict]] = []
        self.tags: set[str] = set()
        self.links: list[str] = []
        self._section: str | None = None
        self._row: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        self.links += [v for k, v in attrs if k in ("href", "src") and v]
        if tag == "section":
            self._section = attributes["id"]
            self.order.append(self._section)
            self.text[self._section], self.rows[self._section] = "", []
        elif tag == "img":
            self.images.append((self._section, attributes))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")
        if self._section and tag in ("br", "td", "th", "li", "p"):
            self.text[self._section] += " "

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        elif tag == "tr" and self._row is not None and self._section:
            self.rows[self._section].append([cell.strip() for cell in self._row])
            self._row = None

    def handle_data(self, data):
        if self._section:
            self.text[self._section] += data
        if self._row:
            self._row[-1] += data


def ab_rate(order: int, side: str) -> float:
    return (10_000 if side == "A" else 8_800) + 10 * order


def build_inputs(template, root: Path, tiny_mnist: Path) -> Path:
    """The folder the report reads (see the module's docstring), and a broken file."""
    runs = commits(template, RATES)
    runs[0].environment.os = HOSTILE
    save_baseline(make_baseline(runs[:8]), root / "baselines")
    for result in runs:
        save_result(result, root / "history")
    for index, result in enumerate(runs[8:]):
        save_result(cuda_twin(result, rate=250_000 + 1_000 * index), root / "cuda")
    for order, side in enumerate(AB_ORDER, 1):
        # Another experiment (lr), so that the devices section compares the CUDA twins with
        # the history's latest sitting.
        result = variant(template, seed=order, rate=ab_rate(order, side), lr=0.002)
        result.run_id = f"ab-{order}-{side}"
        result.created_utc = f"2026-11-21T09:{order:02d}:00+00:00"
        save_result(result, root / "ab-1" / side)
    (root / "<b>broken<i>.json").write_text("{")
    fresh = ["run", "-d", "cpu", "--epochs", "2", "--max-steps", "3", "--no-download"]
    outcome = runner.invoke(
        app, [*fresh, "--data-dir", str(tiny_mnist), "--out", str(root / "fresh")]
    )
    assert outcome.exit_code == 0, outcome.output
    return root


def report(*paths: Path, out: Path, baseline: Path = COMMITTED_BASELINES) -> Page:
    args = ["report", *map(str, paths), "--html", str(out), "--baseline", str(baseline)]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    assert f"wrote {out}" in outcome.output
    return Page(out.read_text())


@pytest.fixture
def inputs(template, tmp_path, tiny_mnist):
    return build_inputs(template, tmp_path / "in", tiny_mnist)


def row_with(page: Page, section: str, text: str) -> list[str]:
    return next(row for row in page.rows[section] if any(text in cell for cell in row))


@pytest.mark.slow
def test_every_section_with_its_figures_and_numbers(inputs, template, tmp_path):
    page = report(inputs, out=tmp_path / "report.html")
    assert page.order == [
        "overview",
        "history",
        "devices",
        "curves",
        "per-run",
        "ab",
        "environment",
        "skipped",
    ]
    # Self-contained: every image inline, no script, nothing fetched.
    assert page.images and "script" not in page.tags
    assert all(link.startswith(("data:image/png;base64,", "#")) for link in page.links)
    for _, image in page.images:
        assert base64.b64decode(image["src"].split(",", 1)[1])[:4] == b"\x89PNG"
        assert len(image["alt"]) > 40
    sections_with_figures = {section for section, _ in page.images}
    assert {"history", "devices", "curves", "per-run", "ab"} <= sections_with_figures

    # Overview: the latest sitting (20 % slower) judged slower against its baseline.
    latest = RATES[-1]
    mean = fmt_rate(statistics.fmean(latest))
    cell = " ".join(row_with(page, "overview", f"4 runs, mean {mean}"))
    assert "speed slower" in cell and "−20." in cell

    # History: the step between the second and the third commit, with its size (each level
    # the median of its sittings' medians in log rate: of two, their geometric mean).
    before = statistics.geometric_mean([statistics.median(RATES[0]), statistics.median(RATES[1])])
    change = row_with(page, "history", "between c100000 and c200000")
    after = statistics.median(latest)
    assert change[2:] == [fmt_rate(before), fmt_rate(after), f"{100 * (after / before - 1):+.1f} %"]

    # Devices: the CUDA twins against the latest CPU sitting.
    speedup = statistics.geometric_mean([250_000, 251_000, 252_000, 253_000])
    speedup /= statistics.geometric_mean(latest)
    assert f"{speedup:.2f}×" in row_with(page, "devices", "NVIDIA H100")

    # A/B: the replicates in run order, then the verdict.
    ab_rows = [row for row in page.rows["ab"] if row[0].isdigit()]
    assert [row[1] for row in ab_rows] == list(AB_ORDER)
    assert [row[2] for row in ab_rows] == [
        fmt_rate(ab_rate(order, side)) for order, side in enumerate(AB_ORDER, 1)
    ]
    assert "B against A: slower" in page.text["ab"]

    # Per run: the stored accuracy per class.
    template_row = [f"{value:.2f}" for value in template.per_class_accuracy_pct]
    assert ["accuracy %", *template_row] in page.rows["per-run"]
    assert "the claim" in page.text["curves"] and "99 %" in page.text["curves"]

    # Strings from files are text, never markup.
    assert HOSTILE in page.text["environment"]
    assert "<b>broken<i>.json" in page.text["skipped"]


def test_sections_only_when_the_data_has_them(template, tmp_path):
    save_result(template, tmp_path / "one")
    page = report(tmp_path / "one", out=tmp_path / "r.html", baseline=tmp_path / "one")
    assert page.order == ["overview", "curves", "per-run", "environment"]
    assert "no baseline" in page.text["overview"]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["nowhere"], "no results or baselines in nowhere"),
        (None, [".", "--baseline", "nowhere"], "baseline path nowhere: no such file or folder"),
        ("exists", ["one"], "exists already"),
        (None, ["one", "--out", "r.md"], "give one of them"),
    ],
)
def test_report_html_errors_are_one_line(template, tmp_path, monkeypatch, setup, args, message):
    monkeypatch.chdir(tmp_path)
    save_result(template, tmp_path / "one")
    if setup == "exists":
        (tmp_path / "r.html").write_text("kept")
    outcome = runner.invoke(app, ["report", *args, "--html", "r.html"])
    assert outcome.exit_code == 2, outcome.output
    assert message in outcome.output and "Traceback" not in outcome.output
    assert setup != "exists" or (tmp_path / "r.html").read_text() == "kept"


@pytest.mark.slow
def test_the_baselines_own_runs_get_no_verdict_against_it(template, tmp_path):
    runs = commits(template, RATES[:2])
    baseline = make_baseline(runs)
    save_baseline(baseline, tmp_path / "baselines")
    for result in runs:
        save_result(result, tmp_path / "runs")
    page = report(tmp_path / "runs", out=tmp_path / "r.html", baseline=tmp_path / "baselines")
    assert f"the runs of {baseline.name} itself" in page.text["overview"]
    assert "no baseline" not in page.text["overview"]


@pytest.mark.parametrize(
    "option", [["--baseline", "."], ["--throughput-tolerance", "3"], ["--margin", "10"]]
)
def test_judging_options_without_html_are_refused(tmp_path, option):
    outcome = runner.invoke(app, ["report", str(tmp_path), *option])
    assert outcome.exit_code == 2 and f"{option[0]} applies to --html only" in outcome.output


@pytest.mark.slow
def test_report_and_compare_give_the_same_verdicts_for_the_same_runs_and_options(
    template, tmp_path
):
    """One request judges both: with compare's options (a tighter margin, a smaller assumed
    drift) the verdict changes in both alike."""
    base = sittings(template, [[10_000, 10_100, 9_900, 10_050, 9_950]] * 2)
    save_baseline(make_baseline(base), tmp_path / "baselines")
    for seed, rate in enumerate([9_300, 9_350, 9_250, 9_400, 9_300]):
        result = variant(template, seed=seed, rate=rate)
        result.created_utc = f"2026-12-01T10:0{seed}:00+00:00"
        save_result(result, tmp_path / "runs")
    places = [str(tmp_path / "runs"), "--baseline", str(tmp_path / "baselines")]
    speeds = []
    for options in ([], ["--throughput-tolerance", "3", "--assumed-drift", "1"]):
        shown = runner.invoke(app, ["compare", *places, "--format", "csv", *options])
        assert shown.exit_code == 0, shown.output
        (speed,) = {row["group_speed"] for row in csv.DictReader(io.StringIO(shown.output))}
        out = tmp_path / f"r{len(options)}.html"
        outcome = runner.invoke(app, ["report", *places, "--html", str(out), *options])
        assert outcome.exit_code == 0, outcome.output
        assert speed in Page(out.read_text()).text["overview"]
        speeds.append(speed)
    assert speeds[0].startswith("inconclusive") and speeds[1].startswith("slower")


@pytest.mark.slow
def test_an_ab_folder_of_a_thousand_pairs_is_judged_by_its_recorded_margin(template, tmp_path):
    """`report` replays `ab`'s rule over every pair of a long `ab` (1,000 pairs, B 3 % slower:
    in the grey zone for long), by the margin the folder recorded unless one is asked for."""
    import random

    from bench.config.options import ComparisonRequest
    from bench.jobs import ab_level
    from bench.judge.report import ab_comparisons
    from bench.storage.records import AbRecord

    rng = random.Random(1)
    start = datetime(2026, 11, 21, tzinfo=UTC)
    results = []
    for pair in range(1000):
        for offset, side in enumerate("AB"):
            rate = 10_000 * (0.97 if side == "B" else 1.0) * math.exp(rng.gauss(0, 0.06))
            result = variant(template, seed=pair, rate=rate)
            result.run_id = f"ab-{pair}-{side}"
            result.created_utc = (start + timedelta(seconds=60 * pair + 30 * offset)).isoformat()
            results.append((tmp_path / "ab" / side / f"{result.run_id}.json", result))
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "ab.txt").write_text(AbRecord(1, 2.0, [("A", "B")] * 1000).text())
    recorded = partial(ab_level, ComparisonRequest())
    assert recorded(tmp_path / "ab") == (0.02, 0.05) and recorded(tmp_path) == (0.05, 0.05)
    (found,), _ = ab_comparisons(results, recorded)
    assert found.effect.margin == 0.02 and len(found.replicates) == 2000
    assert found.effect.verdict == Verdict.SLOWER and found.effect.runs_a < 1000
    (asked,), _ = ab_comparisons(results, partial(ab_level, ComparisonRequest(ab_margin_pct=5)))
    assert asked.effect.margin == 0.05 and asked.effect.verdict == Verdict.OK
    (tmp_path / "ab" / "ab.txt").write_text("order-seed x\n")
    problems = []
    assert ab_level(ComparisonRequest(), tmp_path / "ab", problems) == (0.05, 0.05)
    ((path, reason),) = problems
    assert path.name == "ab.txt" and "judged by the default 5 % margin" in reason


ARTIFACTS = REPO_ROOT / "artifacts"  # ignored by git; CI keeps the screenshot here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The system Chromium for playwright; a skip (a failure under CI) when either is missing."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        executable, reason = None, "the playwright package is not installed (uv sync)"
    else:
        reason = "no Chromium on PATH (apt-get install chromium; .ci/run does)"
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    return executable


@pytest.mark.slow  # starts Chromium
@pytest.mark.parametrize("width", [1366, 800])
def test_the_report_opens_in_chromium_without_errors_and_fits(inputs, tmp_path, width):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    path = tmp_path / "report.html"
    report(inputs, out=path)
    errors: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
        page.goto(path.as_uri(), wait_until="load")
        layout = page.evaluate(
            """() => ({
                overflow: document.documentElement.scrollWidth - window.innerWidth,
                height: document.body.scrollHeight,
                sections: [...document.querySelectorAll('section')].map(
                    s => [s.id, s.getBoundingClientRect().height]),
                broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
                    .map(i => i.alt),
                wider: [...document.images].filter(
                    i => i.getBoundingClientRect().right > window.innerWidth).map(i => i.alt),
            })"""
        )
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / f"report-{width}px.png"
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    assert errors == []
    assert layout["broken"] == [] and layout["wider"] == []
    assert layout["overflow"] <= 0, "the page scrolls sideways"
    assert all(height > 50 for _, height in layout["sections"]), layout["sections"]
    assert layout["height"] > 3 * 900
    from matplotlib.image import imread

    pixels = imread(screenshot)
    assert pixels.shape[0] > 3 * 900 and pixels.std() > 0.05, "a blank page"
