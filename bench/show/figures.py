"""The HTML report's figures: matplotlib figures (closed by plots.png_bytes), each drawn from
figures computed elsewhere; nothing here judges."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.ticker import MaxNLocator

from bench.judge.claim import CLAIM_ACCURACY_PCT, CLAIM_EPOCH
from bench.show.plots import device_color, plt
from bench.storage.results import RunResult

if TYPE_CHECKING:
    from bench.judge.devices import DeviceSpeedup
    from bench.judge.history import History

WIDE = (10, 4)


def plural(count: int, noun: str) -> str:
    """'1 run', '5 runs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def history_figure(history: History):
    """Runs as dots at their start time, each level between change points as a line, the
    baseline's median and margin as a band; torch upgrades as labelled dotted lines, commits
    as ticks along the top where they change, change points as dashed red lines with their
    size. The time axis has dates, as many as fit."""
    import matplotlib.dates as dates

    figure, axes = plt.subplots(figsize=WIDE)
    for source, colour in (("results", "tab:blue"), ("baseline", "tab:grey")):
        runs = [run for s in history.sittings if s.source == source for run in s.runs]
        if runs:
            axes.plot(
                [run.started_utc for run in runs],  # type: ignore[arg-type]  # matplotlib's stubs omit its datetime units
                [run.train_images_per_s for run in runs],
                "o",
                color=colour,
                alpha=0.5 if len(runs) < 200 else 0.25,
                ms=3 if len(runs) < 200 else 1.5,
                label=f"run ({source}, {len(runs):,})",
            )
    edges = [0, *(change.first_sitting for change in history.change_points), len(history.sittings)]
    for number, (start, end) in enumerate(zip(edges, edges[1:], strict=False)):
        sittings = history.sittings[start:end]
        level = statistics.median(s.median_images_per_s for s in sittings)
        axes.hlines(
            level,
            sittings[0].runs[0].started_utc,  # type: ignore[arg-type]  # matplotlib's stubs omit its datetime units
            sittings[-1].runs[-1].started_utc,  # type: ignore[arg-type]  # matplotlib's stubs omit its datetime units
            color="black",
            lw=2,
            label="level between change points" if number == 0 else "_nolegend_",
        )
    median = history.baseline_median_images_per_s
    if median is not None:
        margin = history.margin_pct / 100
        axes.axhspan(
            median * (1 - margin),
            median * (1 + margin),
            color="tab:green",
            alpha=0.12,
            label=f"baseline median ± {history.margin_pct:g} % margin",
        )
        axes.axhline(median, color="tab:green", lw=1)
    previous = history.sittings[0].runs[0]
    commit_marked = False
    for sitting in history.sittings[1:]:
        first = sitting.runs[0]
        if first.torch != previous.torch:
            axes.axvline(first.started_utc, color="tab:purple", ls=":", lw=1)  # type: ignore[arg-type]  # matplotlib's stubs omit its datetime units
            axes.annotate(
                f"torch {first.torch}",
                (first.started_utc, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -10),
                textcoords="offset points",
                color="tab:purple",
                fontsize=7,
            )
        if first.commit != previous.commit:
            axes.plot(
                first.started_utc,  # type: ignore[arg-type]  # matplotlib's stubs omit its datetime units
                1,
                "|",
                color="tab:orange",
                ms=6,
                transform=axes.get_xaxis_transform(),
                clip_on=False,
                label=None if commit_marked else "new commit",
            )
            commit_marked = True
        previous = sitting.runs[-1]
    for number, change in enumerate(history.change_points):
        moment = change.first_run_after.started_utc
        axes.axvline(
            moment,  # type: ignore[arg-type]  # matplotlib's stubs omit its datetime units
            color="tab:red",
            ls="--",
            label="change point" if number == 0 else "_nolegend_",
        )
        axes.annotate(
            f"{change.change_pct:+.1f} %",
            (moment, change.after_images_per_s),
            xytext=(4, 4),
            textcoords="offset points",
            color="tab:red",
            fontsize=8,
        )
    locator = dates.AutoDateLocator(maxticks=10)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    axes.set(
        xlabel="start of the run (UTC)",
        ylabel="training images/s",
        title=f"Training throughput over time\n{history.label}",
    )
    axes.title.set_fontsize(9)
    axes.grid(axis="y", alpha=0.3)
    # Below the axes: a year of dots leaves no empty corner inside them.
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=5, markerscale=2)
    figure.tight_layout()
    return figure


def speedup_figure(speedups: Sequence[DeviceSpeedup]):
    """Each device's speed-up over the CPU with its interval (where there is one)."""
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.6 * len(speedups)))
    labels = [s.other.replace(" · ", "\n", 1) for s in speedups]
    ratios = [s.speed.ratio for s in speedups]
    # No interval (too few runs): no error bar.
    errors = [
        [0.0 if math.isnan(s.speed.low) else s.speed.ratio - s.speed.low for s in speedups],
        [0.0 if math.isnan(s.speed.high) else s.speed.high - s.speed.ratio for s in speedups],
    ]
    bars = axes.barh(labels, ratios, xerr=errors, color="tab:green", capsize=4)
    axes.bar_label(bars, fmt="{:.2f}×", padding=6, fontsize=8)
    axes.axvline(1, color="grey", ls="--", lw=1, label="as fast as the CPU")
    axes.set(
        xlabel="speed-up over the CPU (× training images/s, geometric means, 90 % interval)",
        title="Speed-up over the CPU",
    )
    axes.tick_params(axis="y", labelsize=7)
    axes.legend(fontsize=7)
    axes.invert_yaxis()
    figure.tight_layout()
    return figure


def curves_figure(results: Sequence[RunResult], title: str):
    """Training loss per step and test accuracy per epoch of every run, seeds overlaid, one
    colour per device; the claim's 99 % as a line."""
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=WIDE)
    by_device: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for result in results:
        key = (result.environment.device_type, result.environment.device_name)
        by_device[key].append(result)
    for (device_type, device_name), runs in by_device.items():
        colour = device_color(device_type)
        seeds = sorted({run.config.seed for run in runs})
        some = f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
        label = f"{device_name} ({plural(len(runs), 'run')}, {some})"
        for number, run in enumerate(runs):
            loss_axes.plot(
                range(1, len(run.step_losses) + 1),
                run.step_losses,
                lw=0.5,
                alpha=0.5,
                color=colour,
                label=label if number == 0 else None,
            )
            accuracy_axes.plot(
                [m.epoch for m in run.epochs],
                [m.test_accuracy_pct for m in run.epochs],
                "o-",
                ms=3,
                lw=1,
                alpha=0.6,
                color=colour,
                label=label if number == 0 else None,
            )
    losses = [loss for run in results for loss in run.step_losses if loss > 0]
    # Log only where the losses span a decade or more (a short run's few steps do not).
    spans_decades = bool(losses) and max(losses) > 10 * min(losses)
    loss_axes.set(
        xlabel="training step",
        ylabel="training loss (cross-entropy)",
        yscale="log" if spans_decades else "linear",
        title="Loss",
    )
    accuracy_axes.axhline(
        CLAIM_ACCURACY_PCT,
        ls="--",
        color="grey",
        label=f"claim: {CLAIM_ACCURACY_PCT:g} % after about {CLAIM_EPOCH} epochs",
    )
    accuracy_axes.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    epochs = max(len(run.epochs) for run in results)
    accuracy_axes.set_xlim(0.5, epochs + 0.5)
    accuracy_axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    for axes in (loss_axes, accuracy_axes):
        axes.legend(fontsize=7)
        axes.grid(alpha=0.3)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def confusion_figure(result: RunResult, title: str):
    """The confusion matrix as a heatmap (counts written in), and accuracy per class."""
    figure, (matrix_axes, class_axes) = plt.subplots(
        1, 2, figsize=WIDE, gridspec_kw={"width_ratios": [1, 1.3]}
    )
    matrix = result.confusion
    high = max(max(row) for row in matrix)
    low = min((count for row in matrix for count in row if count), default=high)
    # Log colours, so that the few mistakes show beside the diagonal's thousands.
    image = matrix_axes.imshow(matrix, cmap="Blues", norm="log" if high > 10 * low else None)
    for true, row in enumerate(matrix):
        for predicted, count in enumerate(row):
            if count:
                colour = "white" if count > high / 3 else "black"
                matrix_axes.text(
                    predicted, true, str(count), ha="center", va="center", fontsize=6, color=colour
                )
    matrix_axes.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted digit",
        ylabel="true digit",
        title="Confusion matrix (test images)",
    )
    figure.colorbar(image, ax=matrix_axes, label="test images")
    accuracies = [value if value is not None else 0.0 for value in result.per_class_accuracy_pct]
    bars = class_axes.bar(range(10), accuracies, color="tab:blue", label="accuracy of the class")
    class_axes.bar_label(bars, fmt="{:.1f}", fontsize=6, padding=2)
    class_axes.axhline(
        result.summary.final_test_accuracy_pct,
        color="grey",
        ls="--",
        label=f"overall {result.summary.final_test_accuracy_pct:.2f} %",
    )
    class_axes.set(
        xticks=range(10),
        ylim=(max(0.0, min(accuracies) - 2), 100.5),
        xlabel="digit",
        ylabel="test accuracy (%)",
        title="Accuracy per class",
    )
    class_axes.legend(fontsize=7, loc="lower right")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure
