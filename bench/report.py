"""Rich renderings of RunResults. Measuring and storing live elsewhere; this only shows."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from bench.results import RunResult


def fmt_rate(images_per_s: float) -> str:
    return f"{images_per_s:,.0f}"


def fmt_optional_s(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.2f}"


def fmt_mfu(mfu_pct: float | None, peak_flops_per_s: float | None) -> str:
    if mfu_pct is None or peak_flops_per_s is None:
        return "-"
    return f"{mfu_pct:.1f}% of {peak_flops_per_s / 1e9:,.0f} GFLOP/s"


def device_label(result: RunResult) -> str:
    return f"{result.config.device} ({result.environment.device_name})"


def epoch_table(result: RunResult) -> Table:
    table = Table(title=f"Per epoch · {device_label(result)}")
    for column in (
        "epoch",
        "train s",
        "train img/s",
        "train loss",
        "eval img/s",
        "test loss",
        "test acc %",
    ):
        table.add_column(column, justify="right")
    for m in result.epochs:
        table.add_row(
            str(m.epoch),
            f"{m.train_s:.2f}",
            fmt_rate(m.train_images_per_s),
            f"{m.train_loss_mean:.4f}",
            fmt_rate(m.eval_images_per_s),
            f"{m.test_loss:.4f}",
            f"{m.test_accuracy_pct:.2f}",
        )
    return table


def summary_table(result: RunResult) -> Table:
    s = result.summary
    table = Table(title=f"Summary · {result.run_id}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("device", device_label(result)),
        ("loader / precision", f"{result.config.loader} / {result.config.precision}"),
        ("warm-up epoch (train s)", f"{s.warmup_train_s:.2f}"),
        ("steady training img/s (median)", fmt_rate(s.steady_train_images_per_s)),
        ("evaluation img/s (median)", fmt_rate(s.eval_images_per_s)),
        ("achieved training GFLOP/s", f"{s.train_flops_per_s / 1e9:.2f}"),
        ("MFU vs measured matmul peak", fmt_mfu(s.mfu_pct, s.peak_matmul_flops_per_s)),
        ("final test accuracy %", f"{s.final_test_accuracy_pct:.2f}"),
        (
            f"time to {result.config.target_acc_pct:g}% (train s)",
            fmt_optional_s(s.time_to_target_s),
        ),
        ("peak host RSS MB", f"{s.peak_host_rss_mb:.0f}"),
        (
            "peak device memory MB",
            "-" if s.peak_device_mem_mb is None else f"{s.peak_device_mem_mb:.1f}",
        ),
        ("weights SHA-256", result.weights_sha256[:16]),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


def devices_table(results: Sequence[RunResult]) -> Table:
    """Side by side, with each device's speed-up over the CPU run (or the first run)."""
    reference = next((r for r in results if r.environment.device_type == "cpu"), results[0])
    base_rate = reference.summary.steady_train_images_per_s
    table = Table(title=f"Devices side by side (speed-up vs {reference.config.device})")
    for column in (
        "device",
        "train img/s",
        "speed-up",
        "eval img/s",
        "test acc %",
        "time to target s",
        "weights",
    ):
        table.add_column(column, justify="right")
    for r in results:
        s = r.summary
        table.add_row(
            device_label(r),
            fmt_rate(s.steady_train_images_per_s),
            f"{s.steady_train_images_per_s / base_rate:.2f}×",
            fmt_rate(s.eval_images_per_s),
            f"{s.final_test_accuracy_pct:.2f}",
            fmt_optional_s(s.time_to_target_s),
            r.weights_sha256[:12],
        )
    return table
