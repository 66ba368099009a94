import statistics

import matplotlib.pyplot as plt
import pytest

from bench.config.settings import Tolerances
from bench.judge.compare import compare
from bench.show.plots import comparison_figure, sweep_figure
from bench.storage.baselines import make_baseline
from bench.storage.records import SweepPoint
from tests.test_compare import sittings, variant


@pytest.fixture(autouse=True)
def figures_closed():
    yield
    plt.close("all")


def test_the_comparison_figure_shows_what_compare_judged(template):
    """The judged group: the geometric means of its runs and of its baseline, and the verdict
    in words; the group no baseline judged: its geometric mean alone, and the legend says why."""
    baseline_rates = [10_000, 10_100, 9_900, 10_050, 9_950]
    baseline = make_baseline(sittings(template, [baseline_rates]))
    slower_rates = [7_000, 7_500, 8_000]
    slower = [variant(template, seed=s, rate=rate) for s, rate in enumerate(slower_rates)]
    unjudged_rates = [12_000, 3_000]  # arithmetic mean 7,500, geometric mean 6,000
    unjudged = [
        variant(template, seed=s, rate=rate, batch_size=200)
        for s, rate in enumerate(unjudged_rates)
    ]
    comparison = compare([(None, r) for r in slower + unjudged], [baseline], Tolerances())
    (verdict,) = comparison.verdicts
    assert verdict.speed.verdict == "slower"

    figure = comparison_figure(comparison)
    rate_axes = figure.axes[0]
    assert "geometric mean" in rate_axes.get_xlabel()
    bars = {
        group.label: bar.get_width()
        for group, bar in zip(comparison.groups, rate_axes.containers[0], strict=True)
    }
    (alone,) = [group.label for group in comparison.groups if group.label != verdict.label]
    assert bars[verdict.label] == pytest.approx(statistics.geometric_mean(slower_rates))
    assert bars[alone] == pytest.approx(6_000)
    (marker,) = [segment for lines in rate_axes.collections for segment in lines.get_segments()]
    baseline_x = marker[0][0]  # one marker, across the judged bar only
    assert baseline_x == pytest.approx(statistics.geometric_mean(baseline_rates))
    assert bars[verdict.label] / baseline_x == pytest.approx(verdict.speed.ratio)
    captions = [text.get_text() for text in rate_axes.texts]
    assert any(verdict.speed.describe() in caption for caption in captions)
    assert "6,000 images/s" in captions
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert any(entry.startswith("baseline's geometric mean") for entry in legend)
    assert any(entry.startswith("no baseline verdict") for entry in legend)


def test_the_sweep_figure_ticks_the_batch_sizes_swept():
    points = [
        SweepPoint(
            device="cpu",
            device_name="CPU",
            threads=2,
            batch_size=size,
            steps=3,
            train_images_per_s=1_000.0 * size**0.3,
            eval_images_per_s=5_000.0,
            channels_last=True,
            optimizer="adam",
            precision="fp32",
        )
        for size in (100, 250, 1000, 5000)
    ]
    figure = sweep_figure(points)
    for axes in figure.axes:
        assert [t.get_text() for t in axes.get_xticklabels()] == ["100", "250", "1000", "5000"]
        assert len(axes.xaxis.get_minorticklocs()) == 0
    figure.canvas.draw()
    labels = [t.get_text() for axes in figure.axes for t in axes.get_yticklabels(which="both")]
    shown = [label for label in labels if label]
    assert shown and all(label.replace(",", "").isdigit() for label in shown), labels


def test_the_comparison_figure_stays_bounded_however_many_runs(template):
    runs = [variant(template, seed=seed, rate=10_000 + seed) for seed in range(300)]
    figure = comparison_figure(compare([(None, run) for run in runs], [], Tolerances()))
    width_in, height_in = figure.get_size_inches()
    assert width_in <= 30 and height_in <= 30
    accuracy_axes = figure.axes[1]
    assert "300 runs" in accuracy_axes.get_xlabel() and not accuracy_axes.get_xticklabels()
