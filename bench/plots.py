"""Figures, drawn headless (Agg) and written atomically; never shown."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.results import RunResult, atomic_path  # noqa: E402


def save_figure(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
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
    acc_axes.legend()
    figure.suptitle(
        f"{result.run_id} · {result.environment.device_name} · loader {result.config.loader}"
    )
    figure.tight_layout()
    return save_figure(figure, path)
