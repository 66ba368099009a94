"""Tables at 80 and 100 columns and piped: no number, id or verdict split across lines, nothing
past the edge; golden files hold what a person sees (UPDATE_GOLDEN=1 rewrites them)."""

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from bench.config.settings import Tolerances
from bench.judge.compare import compare
from bench.show.tables import TableData, comparison_tables, side_by_side_table
from bench.show.terminal import fit, narrowed, to_plain
from bench.storage.baselines import make_baseline
from tests.test_compare import sittings, variant

GOLDEN = Path(__file__).parent / "golden"


def runs_table(template) -> TableData:
    first = [10_000, 10_100, 9_900, 10_050, 9_950]
    baseline = make_baseline(sittings(template, [first, [1.03 * rate for rate in first]]))
    runs = []
    for seed in range(3):
        result = variant(template, seed=seed, rate=551 + 10_000 * seed, accuracy=97.92 + seed)
        result.run_id = f"20261126T1658{seed:02d}Z-cpu-tensor-s{seed}-7ce2997{seed}"
        result.weights_sha256 = f"{seed}" * 64
        runs.append(result)
    tables = comparison_tables(compare([(None, r) for r in runs], [baseline], Tolerances()))
    return tables[0]


def side_by_side(template) -> TableData:
    tensor = variant(template, rate=25_675)
    torchvision = variant(template, rate=17_257, loader="torchvision")
    return side_by_side_table([torchvision, tensor])


def shown(table: TableData, width: int | None) -> str:
    if width is None:
        return to_plain(table)
    console = Console(
        width=width, file=io.StringIO(), force_terminal=True, color_system=None, record=True
    )
    console.print(fit(table, width, table.optional))
    return console.export_text()


def words(table: TableData) -> set[str]:
    return {word for row in table.rows for cell in row for word in cell.split()}


@pytest.mark.parametrize("width", [80, 100, None], ids=["80", "100", "piped"])
@pytest.mark.parametrize("which", ["compare-runs", "run-side-by-side"])
def test_tables_fit_without_splitting_a_word(template, which, width):
    table = runs_table(template) if which == "compare-runs" else side_by_side(template)
    text = shown(table, width)
    lines = text.splitlines()
    if width is not None:
        assert max(len(line) for line in lines) <= width
    tokens = {word for line in lines for word in line.replace("│", " ").split()}
    kept = table if width is None else (narrowed(table, width, table.optional) or table)
    assert words(kept) <= tokens, sorted(words(kept) - tokens)
    if width is None:
        assert "│" not in text and "━" not in text
    golden = GOLDEN / f"{which}-{width or 'piped'}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_a_name_longer_than_the_terminal_breaks_after_its_hyphens_and_nothing_else_does():
    name = "cpu-amd-epyc-tensor-adam-fused-channels-last-2-threads-seed-cnn-fp32-e5-b100-lr0-001"
    heading = "seed-cnn fp32 e5 b100 lr0.001 · tensor adam-fused channels-last 2 threads · AMD EPYC"
    speed = "inconclusive +11.7 % [−14.2, +45.4] (2 vs 3 baseline runs, ±8.0 % drift)"
    table = TableData(
        "Against the baselines", ["group", "baseline", "speed"], [[heading, name, speed]]
    )
    lines = shown(table, 80).splitlines()
    assert max(len(line) for line in lines) <= 80
    baseline = next(i for i, line in enumerate(lines) if line.strip().startswith("baseline"))
    first, second = lines[baseline].split()[1], lines[baseline + 1].strip()
    assert first.endswith("-") and first + second == name  # broken after a hyphen, whole
    assert {"adam-fused", "[−14.2,", "+45.4]"} <= {word for line in lines for word in line.split()}


def test_a_long_note_wraps_at_spaces_and_keeps_each_figure_whole():
    from bench.cli import say

    console = Console(width=80, file=io.StringIO(), force_terminal=True, color_system=None)
    note = "n" * 76 + " 8.7 % run-to-run noise, drift between sittings ±8.0 % (partly assumed)"
    say(console, note)
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 2 and max(len(line) for line in lines) <= 80
    assert lines[1].startswith("8.7 %")  # the figure moved whole, not split from its unit
    assert " ".join(lines) == note
