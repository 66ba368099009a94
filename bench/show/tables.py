"""Rich renderings of RunResults. Measuring and storing live elsewhere; this only shows."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config.settings import plural
from bench.judge.compare import Comparison
from bench.judge.stats import RunsSpread, Spread, Verdict
from bench.judge.verdicts import RunRow
from bench.storage.experiment import (
    experiment_label,
    hardware_of,
    identity_of,
    implementation_label,
)
from bench.storage.results import Arithmetic, Environment, RunResult
from bench.storage.throughput import LABELS

if TYPE_CHECKING:
    from bench.judge.portable import PortableVerdict
    from bench.judge.stats import SpeedEffect
    from bench.storage.records import Peak, SweepPoint


def inert(text: str, keep_newlines: bool = False) -> str:
    """`text` safe to show on a terminal: every control or format character (an escape
    sequence's ESC, a carriage return, a bidirectional override…) written as its escape, e.g.
    \\x1b or \\u202e, so that nothing read from a file or an argument can move the cursor,
    recolour, retitle or rewrite what is on the screen. Newlines are kept only when asked for
    (multi-line documents); in a one-line message they could forge a line of their own."""
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or (keep_newlines and char == "\n")
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def fmt_rate(images_per_s: float) -> str:
    return f"{images_per_s:,.0f}"


def fmt_optional_s(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.2f}"


def fmt_mfu_pct(mfu_pct: float | None) -> str:
    """One decimal, or two significant digits below 1 % (a GPU's tiny-batch MFU is 0.02 %)."""
    if mfu_pct is None:
        return "-"
    return f"{mfu_pct:.1f}" if mfu_pct >= 1 else f"{mfu_pct:.2g}"


def fmt_mfu(mfu_pct: float | None, peak_flops_per_s: float | None) -> str:
    if mfu_pct is None or peak_flops_per_s is None:
        return "-"
    return f"{fmt_mfu_pct(mfu_pct)}% of {peak_flops_per_s / 1e9:,.0f} GFLOP/s"


def arithmetic_label(arithmetic: Arithmetic) -> str:
    """e.g. 'fp32 (cuBLAS ieee, cuDNN ieee, oneDNN ieee), determinism strict'."""
    autocast = f"autocast {arithmetic.autocast_dtype}, " if arithmetic.autocast_dtype else ""
    return (
        f"{arithmetic.precision} ({autocast}fp32 work: cuBLAS {arithmetic.cuda_matmul_fp32}, "
        f"cuDNN {arithmetic.cudnn_conv_fp32}, oneDNN {arithmetic.mkldnn_matmul_fp32}/"
        f"{arithmetic.mkldnn_conv_fp32}), determinism {arithmetic.determinism}"
    )


def machine_label(result: RunResult) -> str:
    """The fingerprint's machine key and arithmetic path, e.g. 'AuthenticAMD family 25 model
    17 stepping 1, ATen AVX512, oneDNN Intel AVX-512 …'."""
    hardware, math = hardware_of(result.environment), result.environment.math
    if hardware.cpu is None or math is None:
        return "unknown (a file older than the machine fingerprint)"
    parts = [hardware.cpu, f"ATen {math.capability}", f"oneDNN {math.onednn_isa or 'unknown'}"]
    if hardware.accelerator:
        parts.insert(0, f"{result.environment.device_name} ({hardware.accelerator})")
    parts += [f"{name}={value}" for name, value in math.knobs.items()]
    if math.portable:
        parts.append("portable mode")
    return ", ".join(parts)


def disturbance_label(result: RunResult) -> str:
    d = result.disturbance
    if d is None:
        return "not sampled"
    steal = f", steal {d.steal_pct:.1f} %" if d.steal_pct is not None else ""
    figures = f"others used {d.other_cpu_cores:.2f} of {d.cores} cores{steal}"
    return f"DISTURBED ({figures})" if d.disturbed else f"quiet ({figures})"


def disturbed_mark(result: RunResult) -> str:
    """'yes', '' or '?' (not sampled): a narrow column."""
    if result.disturbance is None:
        return "?"
    return "yes" if result.disturbance.disturbed else ""


def device_label(result: RunResult) -> str:
    return f"{result.config.device} ({result.environment.device_name})"


@dataclass
class TableData:
    """A table as strings, rendered the same way as rich, markdown or CSV."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    show_header: bool = True
    # Columns a narrow terminal may leave out, the least useful first (bench.show.terminal).
    optional: list[str] = field(default_factory=list)


def epoch_table(result: RunResult) -> TableData:
    return TableData(
        f"Per epoch · {device_label(result)}",
        ["epoch", "train s", "train img/s", "train loss", "eval img/s", "test loss", "test acc %"],
        [
            [
                str(m.epoch),
                f"{m.train_s:.2f}",
                fmt_rate(m.train_images_per_s),
                f"{m.train_loss_mean:.4f}",
                fmt_rate(m.eval_images_per_s),
                f"{m.test_loss:.4f}",
                f"{m.test_accuracy_pct:.2f}",
            ]
            for m in result.epochs
        ],
    )


def summary_table(result: RunResult) -> TableData:
    s = result.summary
    rows = [
        ["device", device_label(result)],
        ["experiment", experiment_label(result)],
        ["implementation", implementation_label(result)],
        ["arithmetic", arithmetic_label(result.arithmetic)],
        ["warm-up epoch (train s)", f"{s.warmup_train_s:.2f}"],
        [f"steady training img/s ({LABELS[s.estimator]})", fmt_rate(s.steady_train_images_per_s)],
        ["evaluation img/s (median)", fmt_rate(s.eval_images_per_s)],
        ["achieved training GFLOP/s", f"{s.train_flops_per_s / 1e9:.2f}"],
        ["MFU vs measured matmul peak", fmt_mfu(s.mfu_pct, s.peak_matmul_flops_per_s)],
        ["final test accuracy %", f"{s.final_test_accuracy_pct:.2f}"],
        [
            f"time to {result.config.target_acc_pct:g}% (train s)",
            fmt_optional_s(s.time_to_target_s),
        ],
        [f"peak host RSS MB ({s.peak_host_rss_scope})", f"{s.peak_host_rss_mb:.0f}"],
        [
            "peak device memory MB",
            "-" if s.peak_device_mem_mb is None else f"{s.peak_device_mem_mb:.1f}",
        ],
        ["weights SHA-256", result.weights_sha256[:16]],
        ["machine", machine_label(result)],
        ["machine during the run", disturbance_label(result)],
    ]
    if result.distributed:
        rows += [
            [what, value]
            for what, value in zip(
                DISTRIBUTED_HEADERS[1:], distributed_row(result)[1:], strict=True
            )
        ]
    return TableData(f"Summary · {result.run_id}", ["what", "value"], rows, show_header=False)


def side_by_side_table(results: Sequence[RunResult]) -> TableData:
    """Runs of one invocation side by side, with each one's speed-up over the first."""
    reference = results[0]
    base_rate = reference.summary.steady_train_images_per_s
    return TableData(
        f"Side by side (speed-up vs {reference.config.device} {reference.config.loader})",
        [
            "device",
            "loader",
            "train img/s",
            "speed-up",
            "eval img/s",
            "test acc %",
            "time to target s",
            "weights",
        ],
        [
            [
                device_label(result),
                result.config.loader,
                fmt_rate(result.summary.steady_train_images_per_s),
                f"{result.summary.steady_train_images_per_s / base_rate:.2f}×",
                fmt_rate(result.summary.eval_images_per_s),
                f"{result.summary.final_test_accuracy_pct:.2f}",
                fmt_optional_s(result.summary.time_to_target_s),
                result.weights_sha256[:12],
            ]
            for result in results
        ],
        optional=["eval img/s", "time to target s", "weights"],
    )


def group_table(
    results: Sequence[RunResult], spreads: dict[tuple[str, str], RunsSpread]
) -> TableData:
    """`run --repeat`: every replicate, then each device × loader's median and run-to-run
    spread of training throughput and its accuracy over the replicates (`spreads`, keyed by
    device and loader)."""
    rows = [
        [
            str(result.replicate or "-"),
            device_label(result),
            result.config.loader,
            str(result.config.seed),
            fmt_rate(result.summary.steady_train_images_per_s),
            f"{result.summary.final_test_accuracy_pct:.2f}",
            result.weights_sha256[:12],
        ]
        for result in results
    ]
    for (device, loader), spread in spreads.items():
        first = next(
            result
            for result in results
            if (result.config.device, result.config.loader) == (device, loader)
        )
        rows.append(
            [
                plural(spread.runs, "run"),
                device_label(first),
                loader,
                "",
                f"{fmt_rate(spread.median_images_per_s)} median, ±{100 * spread.noise_cv:.1f} %",
                f"{spread.accuracy_pct.mean:.2f} ± {spread.accuracy_pct.std:.2f}",
                f"{spread.digests} distinct",
            ]
        )
    group = results[0].group or "-"
    return TableData(
        f"Replicates · group {group}",
        ["replicate", "device", "loader", "seed", "train img/s", "test acc %", "weights"],
        rows,
    )


def environment_table(environment: Environment, peak: Peak | None = None) -> TableData:
    rows = []
    for key, value in asdict(environment).items():
        if isinstance(value, dict):  # a part of the fingerprint: one row per field
            rows += [[f"{key}.{name}", _plain(item)] for name, item in value.items()]
        else:
            rows.append([key, _plain(value)])
    hardware = hardware_of(environment)
    parts = [hardware.device_name, hardware.cpu, hardware.isa, hardware.accelerator]
    rows.append(["machine key", " · ".join(part for part in parts if part)])
    if peak is not None:
        rows += [
            [
                f"peak matmul ({peak.precision}, {peak.matmul_size}²)",
                f"{peak.matmul_flops_per_s / 1e9:,.1f} GFLOP/s",
            ],
            [f"copy bandwidth ({peak.copy_mb:g} MB)", f"{peak.copy_bytes_per_s / 1e9:,.1f} GB/s"],
        ]
    return TableData("Environment", ["what", "value"], rows, show_header=False)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{name}={item}" for name, item in value.items()) or "-"
    return str(value)


def sweep_table(points: Sequence[SweepPoint]) -> TableData:
    return TableData(
        "Throughput by batch size",
        ["device", "threads", "batch", "train img/s", "eval img/s"],
        [
            [
                p.device,
                str(p.threads),
                str(p.batch_size),
                fmt_rate(p.train_images_per_s),
                fmt_rate(p.eval_images_per_s),
            ]
            for p in points
        ],
    )


def _spread(spread: Spread | None, digits: int, unit: str = "") -> str:
    if spread is None:
        return "-"
    return (
        f"{spread.mean:,.{digits}f} ± {spread.std:,.{digits}f}{unit} "
        f"[{spread.min:,.{digits}f}–{spread.max:,.{digits}f}]"
    )


def _delta(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:+.2f}{unit}"


def run_record(row: RunRow) -> dict[str, Any]:
    """One run's figures as plain values: the CSV row and the JSON entry."""
    result, s = row.result, row.result.summary
    return {
        "run_id": result.run_id,
        "path": str(row.path),
        "device": result.config.device,
        "device_name": result.environment.device_name,
        "experiment": experiment_label(result),
        "implementation": implementation_label(result),
        "seed": result.config.seed,
        "train_images_per_s": s.steady_train_images_per_s,
        "eval_images_per_s": s.eval_images_per_s,
        "test_accuracy_pct": s.final_test_accuracy_pct,
        "time_to_target_s": s.time_to_target_s,
        "target_acc_pct": result.config.target_acc_pct,
        "peak_host_rss_mb": s.peak_host_rss_mb,
        "peak_device_mem_mb": s.peak_device_mem_mb,
        "mfu_pct": s.mfu_pct,
        "weights_sha256": result.weights_sha256,
        "torch": result.environment.torch,
        "baseline": row.baseline,
        "throughput_delta_pct": row.throughput_delta_pct,
        "accuracy_delta_points": row.accuracy_delta_points,
        "verdict": row.verdict_text,
        "why_no_baseline": row.why_no_baseline,
        "machine": machine_label(result),
        "disturbed": result.disturbance.disturbed if result.disturbance else None,
    }


DISTRIBUTED_HEADERS = [
    "run",
    "ranks × nodes",
    "backend",
    "scaling",
    "global batch",
    "global img/s",
    "per-rank img/s",
    "scaling efficiency",
    "reference",
    "same weights on all ranks",
]


def distributed_row(result: RunResult) -> list[str]:
    info = result.distributed
    assert info is not None
    rates = [rank.train_images_per_s for rank in info.ranks]
    efficiency = info.scaling_efficiency_pct
    return [
        result.run_id,
        f"{info.world_size} × {info.nodes}",
        info.backend,
        info.scaling,
        f"{info.global_batch_size} ({info.per_rank_batch_size}/rank)",
        fmt_rate(info.global_train_images_per_s),
        f"{fmt_rate(min(rates))}–{fmt_rate(max(rates))}",
        "-" if efficiency is None else f"{efficiency:.0f}%",
        info.reference_run or "-",
        "yes" if info.weights_identical else "NO",
    ]


def comparison_tables(comparison: Comparison) -> list[TableData]:
    """`compare`'s tables: the runs, then each of the others where it has rows."""
    tables = [runs_table(comparison)]
    if comparison.verdicts:
        tables.append(baseline_verdicts_table(comparison))
    if any(g.runs > 1 for g in comparison.groups) or len(comparison.groups) > 1:
        tables.append(groups_table(comparison))
    distributed = [row.result for row in comparison.rows if row.result.distributed]
    if distributed:
        tables.append(
            TableData(
                "Data-parallel runs",
                DISTRIBUTED_HEADERS,
                [distributed_row(result) for result in distributed],
            )
        )
    if comparison.cross_device:
        tables.append(cross_device_table(comparison))
    return tables


def runs_table(comparison: Comparison) -> TableData:
    """Every run compared, one row each, with its verdict against its baseline."""
    runs = TableData(
        "Runs",
        [
            "run",
            "device",
            "experiment",
            "implementation",
            "seed",
            "train img/s",
            "eval img/s",
            "test acc %",
            "time to target s",
            "peak mem MB",
            "MFU %",
            "weights",
            "Δ img/s",
            "Δ acc",
            "vs same seed",
            "disturbed",
        ],
        [],
    )
    for row in comparison.rows:
        result, s = row.result, row.result.summary
        memory = s.peak_device_mem_mb if s.peak_device_mem_mb is not None else s.peak_host_rss_mb
        runs.rows.append(
            [
                result.run_id,
                device_label(result),
                experiment_label(result),
                implementation_label(result),
                str(result.config.seed),
                fmt_rate(s.steady_train_images_per_s),
                fmt_rate(s.eval_images_per_s),
                f"{s.final_test_accuracy_pct:.2f}",
                fmt_optional_s(s.time_to_target_s),
                f"{memory:,.0f}",
                fmt_mfu_pct(s.mfu_pct),
                result.weights_sha256[:12],
                _delta(row.throughput_delta_pct, "%"),
                _delta(row.accuracy_delta_points, ""),
                row.verdict_text,
                disturbed_mark(result),
            ]
        )
    runs.optional = [
        "eval img/s",
        "MFU %",
        "peak mem MB",
        "time to target s",
        "implementation",
        "experiment",
        "weights",
        "Δ acc",
        "disturbed",  # each disturbed run also has a note under the tables
        "Δ img/s",  # the verdict beside it says what it means
        "test acc %",  # the groups' table gives it over seeds
        "seed",  # at 80 columns, room for the device on fewer lines
    ]
    return runs


def baseline_verdicts_table(comparison: Comparison) -> TableData:
    """Each group against its baseline: speed over runs, accuracy over seeds."""
    return TableData(
        "Against the baselines (speed over runs, accuracy over seeds)",
        ["group", "baseline", "speed", "accuracy"],
        [
            [
                g.label,
                g.baseline,
                g.speed.describe() if g.speed else f"inconclusive: {g.why_no_speed}",
                g.accuracy.describe(),
            ]
            for g in comparison.verdicts
        ],
    )


def groups_table(comparison: Comparison) -> TableData:
    """Each experiment × implementation × device over its seeds, with its speed-up."""
    return TableData(
        "Groups (mean ± std [min–max] over seeds)",
        [
            "experiment",
            "implementation",
            "device",
            "runs",
            "train img/s",
            "test acc %",
            "time to target s",
            "reached",
            "speed-up vs CPU",
        ],
        [
            [
                g.experiment,
                g.implementation,
                g.device,
                str(g.runs),
                _spread(g.train_images_per_s, 0),
                _spread(g.accuracy_pct, 2),
                _spread(g.time_to_target_s, 1),
                f"{g.reached_target}/{g.runs}",
                "-" if g.speedup_vs_cpu is None else f"{g.speedup_vs_cpu:.2f}× ({g.cpu_reference})",
            ]
            for g in comparison.groups
        ],
        optional=["time to target s", "reached", "speed-up vs CPU", "implementation"],
    )


def cross_device_table(comparison: Comparison) -> TableData:
    """The same experiment and seed on another device against the CPU: accuracy, weights."""
    return TableData(
        "Same experiment and seed across devices",
        [
            "experiment",
            "seed",
            "device · implementation",
            "CPU implementation",
            "Δ acc vs CPU",
            "relative L2 vs CPU weights",
        ],
        [
            [
                x.experiment,
                str(x.seed),
                f"{x.other_device} · {x.other_implementation}",
                x.cpu_implementation,
                f"{x.accuracy_delta_points:+.2f}",
                "-" if x.relative_l2 is None else f"{x.relative_l2:.3g}",
            ]
            for x in comparison.cross_device
        ],
    )


MOST_SKIPPED_NAMED = 10  # beyond it, one line counts the skipped files (JSON lists each)


def notes(comparison: Comparison) -> list[str]:
    """The lines under the tables: what was left out, then each note once per group where it
    applies to many runs (a folder of a year would say the same thing per run)."""
    lines = [f"{comparison.left_out} (--all shows every run)"] if comparison.left_out else []
    by_reason: dict[str, list[str]] = {}
    for row in comparison.rows:
        if row.why_no_baseline:
            by_reason.setdefault(row.why_no_baseline, []).append(row.result.run_id)
    for why, run_ids in by_reason.items():
        text = why if why.startswith(Verdict.NO_MACHINE_BASELINE) else f"no baseline ({why})"
        lines.append(f"{_runs_named(run_ids)}: {text}")
    disturbed = [
        row.result
        for row in comparison.rows
        if row.result.disturbance and row.result.disturbance.disturbed
    ]
    if disturbed:
        first = disturbed[0]
        reasons = "; ".join(first.disturbance.reasons) if first.disturbance else ""
        if len(disturbed) == 1:
            lines.append(f"{first.run_id}: disturbed while it ran: {reasons}")
        else:
            lines.append(
                f"{_runs_named([r.run_id for r in disturbed])} were disturbed while they ran "
                f"(the first: {reasons})"
            )
    for group in comparison.verdicts:
        if group.speed is None:
            lines.append(f"{group.label}: speed inconclusive: {group.why_no_speed}")
        else:
            lines += [f"{group.label}: speed {line}" for line in speed_notes(group.speed)[1:]]
        lines.append(f"{group.label}: accuracy {group.accuracy.verdict}: {group.accuracy.reason}")
    lines += skipped_lines("", comparison.problems)
    lines += skipped_lines("baseline ", comparison.baseline_problems)
    return lines


def _runs_named(run_ids: list[str]) -> str:
    """'RUN', or '3 runs like RUN' (runs of one group: one note says it for all)."""
    if len(run_ids) == 1:
        return run_ids[0]
    return f"{len(run_ids)} runs like {run_ids[0]}"


def skipped_lines(
    what: str, problems: list[tuple[Path, str]], listed: str = "--format json lists each"
) -> list[str]:
    """Each skipped file with its reason; past MOST_SKIPPED_NAMED, one line counting them and
    saying where each is `listed`."""
    if len(problems) <= MOST_SKIPPED_NAMED:
        return [f"skipped {what}{path}: {reason}" for path, reason in problems]
    path, reason = problems[0]
    return [
        f"skipped {len(problems):,} unusable {what}files (the first, {path.name}: {reason}); "
        + listed
    ]


def shown(text: str) -> str:
    """`text` as rich markup that prints it literally: inert, and its brackets escaped."""
    from rich.markup import escape

    return escape(inert(text))


def to_markdown(tables: Sequence[TableData], footnotes: Sequence[str]) -> str:
    parts = []
    for table in tables:
        parts.append(f"### {inert(table.title)}\n")
        parts.append("| " + " | ".join(table.headers) + " |")
        parts.append("|" + "---|" * len(table.headers))
        parts.extend(
            "| " + " | ".join(inert(c).replace("|", "\\|") for c in row) + " |"
            for row in table.rows
        )
        parts.append("")
    parts.extend(f"- {inert(line)}" for line in footnotes)
    return "\n".join(parts).rstrip() + "\n"


def group_record(comparison: Comparison, row: RunRow) -> dict[str, Any]:
    """The verdicts of the run's group against its baseline (empty when it has none), for the
    CSV: speed over runs and accuracy over seeds, each as a verdict and in words."""
    group = comparison.verdict_of(identity_of(row.result))
    if group is None:
        return dict.fromkeys(GROUP_COLUMNS, "")
    label = group.label
    speed = group.speed.describe() if group.speed else f"inconclusive: {group.why_no_speed}"
    return dict(
        zip(
            GROUP_COLUMNS,
            [label, group.verdicts[0], speed, group.accuracy.verdict, group.accuracy.describe()],
            strict=True,
        )
    )


GROUP_COLUMNS = (
    "group",
    "group_speed_verdict",
    "group_speed",
    "group_accuracy_verdict",
    "group_accuracy",
)


def to_csv(comparison: Comparison) -> str:
    records = [
        {key: inert(value) if isinstance(value, str) else value for key, value in record.items()}
        for record in (run_record(row) | group_record(comparison, row) for row in comparison.rows)
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["run_id"])
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def to_json(comparison: Comparison) -> str:
    payload = {
        "runs": [run_record(row) for row in comparison.rows],
        "groups": [asdict(group) for group in comparison.groups],
        "cross_device": [asdict(pair) for pair in comparison.cross_device],
        "problems": [{"path": str(p), "reason": reason} for p, reason in comparison.problems],
        "baseline_problems": [
            {"path": str(p), "reason": reason} for p, reason in comparison.baseline_problems
        ],
        "verdicts": [_finite(asdict(group)) for group in comparison.verdicts],
        "left_out": comparison.left_out,
        "regressions": comparison.regressions,
        "cannot_judge": comparison.why_cannot_judge,
        "undecided": comparison.undecided,
    }
    return json.dumps(payload, indent=1, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    """`value` with NaN or ±∞ (a figure that does not exist, e.g. no interval yet) as None,
    for JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def fmt_commits(results: Sequence[RunResult]) -> str:
    """The code the runs ran: each distinct commit (12 hex, '-dirty' kept), '-' if unknown."""
    commits = dict.fromkeys(
        "-" if r.environment.git_commit is None else short_commit(r.environment.git_commit)
        for r in results
    )
    return ", ".join(commits)


def short_commit(commit: str) -> str:
    sha, dirty, _ = commit.partition("-dirty")
    return sha[:12] + ("-dirty" if dirty else "")


def ab_table(
    sides: dict[str, list[RunResult]], effect: SpeedEffect, options: dict[str, str]
) -> TableData:
    """Per variant: its options, runs, median and range of training throughput, accuracy,
    torch, the commit its code was, and how many of its runs were disturbed."""
    spreads = {name: RunsSpread.of(results) for name, results in sides.items()}
    rows = [
        [
            f"{name}: {options[name] or '(defaults)'}",
            str(spread.runs),
            fmt_rate(spread.median_images_per_s),
            f"{fmt_rate(spread.min_images_per_s)}–{fmt_rate(spread.max_images_per_s)}",
            f"{spread.accuracy_pct.mean:.2f} ± {spread.accuracy_pct.std:.2f}",
            sides[name][0].environment.torch,
            fmt_commits(sides[name]),
            f"{spread.disturbed} of {spread.runs}",
        ]
        for name, spread in spreads.items()
    ]
    return TableData(
        f"A/B, interleaved pairs · B vs A: {effect.describe()}",
        [
            "variant",
            "runs",
            "median train img/s",
            "range",
            "test acc %",
            "torch",
            "commit",
            "disturbed",
        ],
        rows,
    )


def speed_notes(effect: SpeedEffect) -> list[str]:
    """The verdict with its effect, interval and reason, and what it could have missed."""
    lines = [f"verdict: {effect.describe()}", f"why: {effect.reason}"]
    noise = "unknown" if math.isnan(effect.noise_cv) else f"{100 * effect.noise_cv:.1f} %"
    lines.append(f"interval: {effect.interval}; run-to-run noise {noise}")
    if effect.verdict != Verdict.SLOWER and effect.could_miss > 0:
        lines.append(f"could have missed a slowdown of up to {100 * effect.could_miss:.0f} %")
    if effect.against_baseline and effect.detectable > effect.margin:
        lines.append(
            f"against this baseline it sees slowdowns of ≈ {100 * effect.detectable:.0f} % "
            "or more (80 % of the time); for smaller ones use `mnist-bench ab`"
        )
    return lines


def portable_table(verdict: PortableVerdict) -> TableData:
    """`verify-portable`: each seed's weights against the reference's."""
    return TableData(
        "Portable mode against the reference digests",
        ["seed", "reference weights", "these weights", "verdict"],
        [[str(c.seed), (c.expected or "-")[:16], c.got[:16], c.verdict] for c in verdict.checks],
    )
