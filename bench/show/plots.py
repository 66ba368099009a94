"""Figures, drawn headless (Agg) and written atomically; never shown."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
# Every string in a figure is text: run ids, device names and labels come from files, and a
# '$' in one must not be read as TeX (an unbalanced one ends mathtext's parser in an error).
# No figure here asks for mathtext (log axes are labelled in plain numbers).
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator, NullLocator  # noqa: E402

from bench.judge.compare import Comparison  # noqa: E402
from bench.storage.files import write_bytes_atomic  # noqa: E402
from bench.storage.results import RunResult  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.storage.records import Replicate, SweepPoint


def png_bytes(figure, dpi: int = 120) -> bytes:
    """The figure as PNG, rendered in memory (a write error is then a plain OSError on the
    file), and closed."""
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=dpi)
    plt.close(figure)
    return png.getvalue()


def save_figure(figure, path: Path) -> Path:
    write_bytes_atomic(path, png_bytes(figure))
    return path


def plot_loss(result: RunResult, path: Path) -> Path:
    """Training loss per step as a line, test loss per epoch as markers; accuracy beside it."""
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(11, 4))
    steps_per_epoch = len(result.step_losses) // len(result.epochs)
    epoch_ends = [m.epoch * steps_per_epoch for m in result.epochs]
    loss_axes.plot(
        range(1, len(result.step_losses) + 1),
        result.step_losses,
        lw=0.6,
        label="training loss (per step)",
    )
    loss_axes.plot(
        epoch_ends,
        [m.test_loss for m in result.epochs],
        "o",
        color="tab:red",
        label="test loss (per epoch)",
    )
    loss_axes.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="Loss")
    loss_axes.legend()
    acc_axes.plot(
        [m.epoch for m in result.epochs],
        [m.test_accuracy_pct for m in result.epochs],
        "o-",
        color="tab:green",
    )
    acc_axes.axhline(
        result.config.target_acc_pct,
        ls="--",
        color="grey",
        label=f"target {result.config.target_acc_pct:g}%",
    )
    acc_axes.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    acc_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_axes.legend()
    figure.suptitle(
        f"{result.run_id} · {result.environment.device_name} · loader {result.config.loader}"
    )
    figure.tight_layout()
    return save_figure(figure, path)


def device_color(device_type: str) -> str:
    return "tab:orange" if device_type == "cpu" else "tab:green"


def draw_against_baselines(axes, comparison: Comparison) -> list[Line2D | Patch]:
    """Per group, the geometric mean of its runs' training throughput (where a baseline judged
    the group, of the runs it judged) as a bar, the baseline's as a line across it, and the
    verdict beneath; the legend entries that explain them."""
    groups = comparison.groups
    verdicts = [comparison.verdict_of(group.identity) for group in groups]
    speeds = [verdict.speed if verdict else None for verdict in verdicts]
    rates = [
        speed.b_images_per_s if speed else group.geomean_train_images_per_s
        for group, speed in zip(groups, speeds, strict=True)
    ]
    axes.barh(
        [f"{g.device}\n{g.experiment}\n{g.implementation}" for g in groups],
        rates,
        height=0.4,
        color=[device_color(g.device_type) for g in groups],
        hatch=["" if verdict else "//" for verdict in verdicts],
        edgecolor="white",
    )
    for index, (rate, verdict, speed) in enumerate(zip(rates, verdicts, speeds, strict=True)):
        caption = f"{rate:,.0f} images/s"
        if speed is not None:
            axes.vlines(speed.a_images_per_s, index - 0.3, index + 0.3, color="black", lw=2)
            caption += f" vs baseline {speed.a_images_per_s:,.0f}\n{speed.describe()}"
        elif verdict is not None:
            caption += f"\nspeed inconclusive: {verdict.why_no_speed}"
        axes.annotate(
            caption,
            (0, index + 0.2),
            xytext=(2, -2),
            textcoords="offset points",
            va="top",
            fontsize=8,
        )
    axes.set(
        xlabel="training images/s (steady state, geometric mean over seeds)",
        title="Training throughput against the baselines",
    )
    axes.tick_params(axis="y", labelsize=7)
    axes.margins(x=0.05)
    axes.set_ylim(len(groups) - 0.4, -0.5)  # top down, with room for the last caption
    legend: list[Line2D | Patch] = []
    if any(speeds):
        legend.append(
            Line2D(
                [], [], color="black", lw=2, label="baseline's geometric mean, as judged against"
            )
        )
    if not all(verdicts):
        legend.append(
            Patch(
                facecolor="white",
                hatch="//",
                edgecolor="dimgrey",
                label="no baseline verdict (none matched, or only the baseline's own runs)",
            )
        )
    return legend


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    return save_figure(comparison_figure(comparison), path)


# A figure grows with what it shows up to this many inches a side (1,100 runs once made a
# 66,000-pixel PNG); beyond this many runs, the accuracy bars go unlabelled.
MAX_FIGURE_IN = 30
LABELLED_RUNS = 60


def comparison_figure(comparison: Comparison):
    """Above, each group's training throughput against its baseline, as compare judged it;
    below, the accuracy of each run."""
    groups, rows = comparison.groups, comparison.rows
    figure, (rate_axes, acc_axes) = plt.subplots(
        2,
        1,
        figsize=(
            min(MAX_FIGURE_IN, max(10, len(rows) / 2)),
            min(MAX_FIGURE_IN, 5 + 1.1 * len(groups)),
        ),
        gridspec_kw={"height_ratios": [1 + 1.1 * len(groups), 3.5]},
        layout="constrained",
    )
    legend = draw_against_baselines(rate_axes, comparison)
    if legend:
        figure.legend(handles=legend, loc="outside upper center", ncols=2, fontsize=8)
    accuracies = [row.result.summary.final_test_accuracy_pct for row in rows]
    acc_bars = acc_axes.bar(
        range(len(rows)),
        accuracies,
        color=[device_color(row.result.environment.device_type) for row in rows],
    )
    if len(rows) <= LABELLED_RUNS:
        acc_axes.set_xticks(
            range(len(rows)),
            [
                f"{row.result.config.device} s{row.result.config.seed} {row.result.config.loader}"
                + (f" ×{row.result.config.world_size}" if row.result.config.world_size > 1 else "")
                for row in rows
            ],
            fontsize=7,
            rotation=45,
            ha="right",
        )
        acc_axes.bar_label(acc_bars, fmt="{:.2f}", fontsize=6, padding=2)
    else:
        acc_axes.set_xticks([])
        acc_axes.set_xlabel(f"{len(rows)} runs, in the order of the runs table")
    low = min(accuracies) if accuracies else 0
    acc_axes.set(
        ylim=(max(0, low - 1), 100), ylabel="final test accuracy (%)", title="Accuracy per run"
    )
    return figure


def plot_sweep(points: list[SweepPoint], path: Path) -> Path:
    return save_figure(sweep_figure(points), path)


class PlainLogFormatter(LogFormatterSciNotation):
    """A log axis labelled where matplotlib would label it, in plain numbers: 20,000, not
    2×10⁴."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:,.6g}" if super().__call__(x, pos) else ""


def sweep_figure(points: list[SweepPoint]):
    """Training and evaluation images/s against batch size, one line per device and threads;
    a tick at each batch size swept."""
    figure, (train_axes, eval_axes) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    lines: dict[str, list[SweepPoint]] = {}
    for point in points:
        label = f"{point.device} ({point.device_name})"
        if point.device == "cpu":
            label += f", {point.threads} thread{'s' if point.threads > 1 else ''}"
        lines.setdefault(label, []).append(point)
    for label, line in lines.items():
        sizes = [p.batch_size for p in line]
        train_axes.plot(sizes, [p.train_images_per_s for p in line], "o-", label=label)
        eval_axes.plot(sizes, [p.eval_images_per_s for p in line], "o-", label=label)
    swept = sorted({point.batch_size for point in points})
    for axes, what in ((train_axes, "training"), (eval_axes, "evaluation")):
        axes.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel=f"{what} images/s",
            title=f"{what.capitalize()} throughput",
        )
        axes.set_xticks(swept, [str(size) for size in swept])
        axes.xaxis.set_minor_locator(NullLocator())
        axes.yaxis.set_major_formatter(PlainLogFormatter())
        axes.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_ab(replicates: Sequence[Replicate], path: Path) -> Path:
    return save_figure(ab_figure(replicates), path)


def ab_figure(replicates: Sequence[Replicate], title: str = "A/B replicates"):
    """Every replicate's training throughput in run order, A and B apart: drift shows as a
    trend both share, a real difference as a gap between them."""
    figure, axes = plt.subplots(figsize=(8, 4))
    for name, colour in (("A", "tab:blue"), ("B", "tab:red")):
        mine = [replicate for replicate in replicates if replicate.variant == name]
        axes.plot(
            [replicate.order for replicate in mine],
            [replicate.result.summary.steady_train_images_per_s for replicate in mine],
            "o-",
            color=colour,
            label=name,
        )
    axes.set(xlabel="run order (interleaved)", ylabel="training images/s", title=title)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    figure.tight_layout()
    return figure
