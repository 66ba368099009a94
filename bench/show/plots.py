"""Figures, drawn headless (Agg) and written atomically; never shown."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

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


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    """Mean training throughput per config and device (± std), and accuracy per run."""
    groups = comparison.groups
    figure, (rate_axes, acc_axes) = plt.subplots(
        1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, max(1, len(comparison.rows) / 6)]}
    )
    labels = [f"{g.device}\n{g.experiment}\n{g.implementation}" for g in groups]
    rate_bars = rate_axes.barh(
        labels,
        [g.train_images_per_s.mean for g in groups],
        xerr=[g.train_images_per_s.std for g in groups],
        color=[device_color(g.device_type) for g in groups],
    )
    rate_axes.set(
        xlabel="training images/s (steady state, mean ± std over seeds)",
        title="Training throughput",
    )
    rate_axes.tick_params(axis="y", labelsize=7)
    rate_axes.bar_label(rate_bars, fmt="{:,.0f}", fontsize=7, padding=3)
    rate_axes.invert_yaxis()
    accuracies = [row.result.summary.final_test_accuracy_pct for row in comparison.rows]
    acc_bars = acc_axes.bar(
        range(len(comparison.rows)),
        accuracies,
        color=[device_color(r.result.environment.device_type) for r in comparison.rows],
    )
    acc_axes.set_xticks(
        range(len(comparison.rows)),
        [
            f"{r.result.config.device} s{r.result.config.seed} {r.result.config.loader}"
            + (f" ×{r.result.config.world_size}" if r.result.config.world_size > 1 else "")
            for r in comparison.rows
        ],
        fontsize=7,
        rotation=45,
        ha="right",
    )
    acc_axes.bar_label(acc_bars, fmt="{:.2f}", fontsize=6, padding=2)
    low = min(accuracies) if accuracies else 0
    acc_axes.set(
        ylim=(max(0, low - 1), 100), ylabel="final test accuracy (%)", title="Accuracy per run"
    )
    figure.tight_layout()
    return save_figure(figure, path)


def plot_sweep(points: list[SweepPoint], path: Path) -> Path:
    """Training and evaluation images/s against batch size, one line per device and threads."""
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
    for axes, what in ((train_axes, "training"), (eval_axes, "evaluation")):
        axes.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel=f"{what} images/s",
            title=f"{what.capitalize()} throughput",
        )
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_ab(replicates: Sequence[Replicate], path: Path) -> Path:
    return save_figure(ab_figure(replicates), path)


def ab_figure(replicates: Sequence[Replicate], title: str = "A/B replicates"):
    """Every replicate's training throughput in run order, A and B apart: drift shows as a
    trend both share, a real difference as a gap between them."""
    figure, axes = plt.subplots(figsize=(8, 4))
    for name, colour in (("A", "tab:blue"), ("B", "tab:red")):
        mine = [r for r in replicates if r.variant == name]
        axes.plot(
            [r.order for r in mine],
            [r.result.summary.steady_train_images_per_s for r in mine],
            "o-",
            color=colour,
            label=name,
        )
    axes.set(xlabel="run order (interleaved)", ylabel="training images/s", title=title)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    figure.tight_layout()
    return figure
