"""The HTML report: one self-contained file (inline CSS, figures as inline PNG, no script, no
network), readable on a laptop and printable. Renders bench.jobs.ReportInputs; judges nothing.

Every string that comes from a file (run ids, labels, paths, verdict reasons) is escaped.
"""

from __future__ import annotations

import base64
import html
import math
from collections import defaultdict
from collections.abc import Sequence, Set
from dataclasses import asdict, fields, is_dataclass
from typing import TYPE_CHECKING

from bench.judge.claim import CLAIM, CLAIM_ACCURACY_PCT, CLAIM_EPOCH, claim_verdict
from bench.judge.compare import run_label
from bench.show.figures import (
    confusion_figure,
    curves_figure,
    history_figure,
    plural,
    speedup_figure,
)
from bench.show.plots import ab_figure, png_bytes
from bench.show.tables import fmt_commits, fmt_rate
from bench.storage.experiment import hardware_of, identity_of
from bench.storage.results import Environment, RunResult

if TYPE_CHECKING:
    from bench.judge.compare import Comparison
    from bench.judge.devices import DeviceSpeedup
    from bench.judge.history import History, Sitting
    from bench.judge.report import AbComparison, Curves, ReportInputs

STYLE = """
:root { --ink: #1b1f24; --muted: #59636e; --line: #d0d7de; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1120px; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0; }
h2 { font-size: 1.3rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem;
     margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; overflow-wrap: anywhere; }
p.meta, p.note { color: var(--muted); font-size: .9rem; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem 1rem; }
nav a { text-decoration: none; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .85rem; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left;
         vertical-align: top; }
th { background: var(--band); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id, code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .8rem;
              overflow-wrap: anywhere; }
figure { margin: .8rem 0 1.2rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .85rem; margin-top: .3rem; }
.verdict { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-weight: 600;
           white-space: nowrap; }
.bad { background: #ffd8d3; color: #82071e; }
.good { background: #dafbe1; color: #116329; }
.same { background: #ddf4ff; color: #0a3069; }
.unknown { background: #eaeef2; color: #424a53; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  figure, table { break-inside: avoid; }
}
"""

VERDICT_CLASS = {
    "slower": "bad",
    "less accurate": "bad",
    "different weights": "bad",
    "faster": "good",
    "more accurate": "good",
    "ok": "same",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def verdict_badge(verdict: str) -> str:
    return f'<span class="verdict {VERDICT_CLASS.get(verdict, "unknown")}">{esc(verdict)}</span>'


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Set[int] = frozenset()
) -> str:
    """A table of already-escaped cells; the columns in `numeric` right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if index in numeric else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def figure(matplotlib_figure, alt: str, caption: str) -> str:
    encoded = base64.b64encode(png_bytes(matplotlib_figure, dpi=100)).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _interval(low: float, high: float, unit: str = "×", digits: int = 2) -> str:
    if math.isnan(low):
        return "no interval (too few runs)"
    return f"[{low:.{digits}f}{unit}, {high:.{digits}f}{unit}]"


def overview(comparison: Comparison) -> str:
    """Experiments × machines: the latest sitting of each against its baseline."""
    baseline_of = {identity_of(row.result): row.baseline for row in comparison.rows if row.baseline}
    machines = list(dict.fromkeys(group.device for group in comparison.groups))
    experiments = list(dict.fromkeys((g.experiment, g.implementation) for g in comparison.groups))
    cells: dict[tuple[tuple[str, str], str], str] = {}
    for group in comparison.groups:
        verdict = comparison.verdict_of(group.identity)
        runs = f"{plural(group.runs, 'run')}, mean "
        runs += f"{fmt_rate(group.train_images_per_s.mean)} images/s"
        if verdict is None and group.identity in baseline_of:
            text = (
                f"{esc(runs)}<br><small>the runs of {esc(baseline_of[group.identity])} itself: no "
                "evidence against it</small>"
            )
        elif verdict is None:
            text = f"{verdict_badge('no baseline')}<br>{esc(runs)}"
        else:
            speed = (
                verdict.speed.describe()
                if verdict.speed
                else f"inconclusive: {verdict.why_no_speed}"
            )
            text = (
                f"{esc(runs)}<br>speed {verdict_badge(verdict.verdicts[0])} {esc(speed)}"
                f"<br>accuracy {verdict_badge(verdict.accuracy.verdict)} "
                f"{esc(verdict.accuracy.describe())}"
                f"<br><small>against {esc(verdict.baseline)}</small>"
            )
        cells[((group.experiment, group.implementation), group.device)] = text
    rows = [
        [f"{esc(experiment)}<br><small>{esc(implementation)}</small>"]
        + [cells.get(((experiment, implementation), m), "–") for m in machines]
        for experiment, implementation in experiments
    ]
    return (
        "<p>Each experiment's latest sitting on each machine, judged against its baseline: speed "
        "as the ratio of geometric means with its interval (one-sided 95 % bounds, allowing for "
        "the drift between sittings), accuracy over seeds.</p>"
        + table(["experiment · implementation", *machines], rows)
    )


LATEST_SITTINGS_SHOWN = 5  # the history's sittings shown open; the rest in a collapsed table


def _sitting_rows(sittings: Sequence[Sitting]) -> list[list[str]]:
    return [
        [
            esc(s.label),
            esc(s.source),
            str(len(s.runs)),
            fmt_rate(s.median_images_per_s),
            f"{fmt_rate(min(run.train_images_per_s for run in s.runs))}–"
            f"{fmt_rate(max(run.train_images_per_s for run in s.runs))}",
        ]
        for s in sittings
    ]


SITTING_HEADERS = ["sitting", "from", "runs", "median images/s", "range images/s"]


def _levels(history: History) -> str:
    """The history as the levels between its change points: one row each."""
    edges = [0, *(c.first_sitting for c in history.change_points), len(history.sittings)]
    rows = []
    for start, end in zip(edges, edges[1:], strict=False):
        sittings = history.sittings[start:end]
        medians = sorted(s.median_images_per_s for s in sittings)
        rows.append(
            [
                esc(sittings[0].label),
                esc(sittings[-1].label),
                str(len(sittings)),
                str(sum(len(s.runs) for s in sittings)),
                fmt_rate(medians[len(medians) // 2]),
            ]
        )
    return table(
        ["first sitting", "last sitting", "sittings", "runs", "median of sitting medians"],
        rows,
        numeric={2, 3, 4},
    )


def _history(history: History) -> str:
    runs = history.runs
    first, last = history.sittings[0], history.sittings[-1]
    changes = "; ".join(change.describe() for change in history.change_points) or "none"
    alt = (
        f"Training throughput of {history.label} over {len(history.sittings)} sittings "
        f"({len(runs)} runs) from {first.label} to {last.label}: runs as dots at their start "
        "time, the level between change points as lines"
        + (
            f", the baseline median {fmt_rate(history.baseline_median_images_per_s)} images/s "
            f"with a ±{history.margin_pct:g} % band"
            if history.baseline_median_images_per_s
            else ""
        )
        + f". Change points: {changes}."
    )
    caption = (
        f"{plural(len(history.sittings), 'sitting')}, {plural(len(runs), 'run')}; torch "
        f"upgrades dotted, new commits as ticks along the top; change points: {changes}."
    )
    parts = [f"<h3>{esc(history.label)}</h3>", figure(history_figure(history), alt, caption)]
    if history.change_points:
        parts.append(
            table(
                ["first sitting after", "where", "before images/s", "after images/s", "change"],
                [
                    [
                        esc(history.sittings[change.first_sitting].label),
                        esc(change.commits),
                        fmt_rate(change.before_images_per_s),
                        fmt_rate(change.after_images_per_s),
                        f"{change.change_pct:+.1f} %",
                    ]
                    for change in history.change_points
                ],
                numeric={2, 3, 4},
            )
        )
    noise = "unknown" if history.noise_cv is None else f"{100 * history.noise_cv:.1f} %"
    drift = "unknown" if history.drift_cv is None else f"{100 * history.drift_cv:.1f} %"
    baseline_drift = (
        f"; the baseline's drift between its sittings: ±{100 * history.baseline_drift:.1f} %"
        if history.baseline_drift is not None
        else ""
    )
    count = len(history.change_points)
    found = plural(count, "change point") if count else "No change"
    judged = (
        f"could not be judged: {history.why_not_judged}"
        if history.why_not_judged
        else f"{found} beyond ±{history.margin_pct:g} % and beyond the drift between sittings"
    )
    parts.append(
        f'<p class="note">{esc(judged)} (sitting medians of {plural(len(runs), "run")} in time '
        f"order; run-to-run noise {noise}, drift between sittings {drift}"
        f"{esc(baseline_drift)}).</p>"
    )
    parts.append(_levels(history))
    latest = history.sittings[-LATEST_SITTINGS_SHOWN:]
    parts.append(
        f'<p class="note">The latest {plural(len(latest), "sitting")}:</p>'
        + table(SITTING_HEADERS, _sitting_rows(latest), numeric={2, 3, 4})
    )
    if len(history.sittings) > len(latest):
        parts.append(
            f"<details><summary>Every sitting ({len(history.sittings):,})</summary>"
            + table(SITTING_HEADERS, _sitting_rows(history.sittings), numeric={2, 3, 4})
            + "</details>"
        )
    return "".join(parts)


def devices(speedups: Sequence[DeviceSpeedup]) -> str:
    rows = []
    for s in speedups:
        distances = (
            f"{s.median_relative_l2:.3g} (median of {len(s.relative_l2)} seeds)"
            if s.median_relative_l2 is not None
            else "– (weights not kept)"
        )
        rows.append(
            [
                esc(s.other),
                esc(s.experiment_cpu),
                f"{s.speed.ratio:.2f}×",
                esc(_interval(s.speed.low, s.speed.high)),
                f"{s.accuracy_delta_points:+.2f}",
                esc(distances),
            ]
        )
    alt = "Speed-up over the CPU: " + "; ".join(
        f"{s.other}: {s.speed.ratio:.2f}× {_interval(s.speed.low, s.speed.high)}" for s in speedups
    )
    return figure(speedup_figure(speedups), alt, alt) + table(
        [
            "device · implementation",
            "against the CPU group",
            "speed-up",
            "90 % interval",
            "Δ accuracy (points)",
            "relative L2 of weights",
        ],
        rows,
        numeric={2, 3, 4},
    )


def _curves(curves: Curves) -> str:
    devices_text = ", ".join(f"{d.device} ({plural(len(d.seeds), 'seed')})" for d in curves.devices)
    alt = (
        f"Training loss per step and test accuracy per epoch of {curves.experiment}, "
        f"{plural(len(curves.results), 'run')} on {devices_text}, seeds overlaid; the claim's "
        f"{CLAIM_ACCURACY_PCT:g} % as a dashed line."
    )
    rows = []
    for d in curves.devices:
        at_claim = d.accuracy_by_epoch[min(CLAIM_EPOCH, len(d.accuracy_by_epoch)) - 1]
        reached = sum(1 for epoch in d.reached.values() if epoch is not None)
        rows.append(
            [
                esc(d.device),
                str(len(d.seeds)),
                f"{at_claim.mean:.2f} ± {at_claim.std:.2f}",
                f"{reached}/{len(d.seeds)}",
                esc(claim_verdict(d)),
            ]
        )
    epoch = f"test accuracy after epoch {CLAIM_EPOCH} (or the last), %"
    return (
        f"<h3>{esc(curves.experiment)}</h3>"
        + figure(curves_figure(curves.results, curves.experiment), alt, alt)
        + table(
            ["device", "seeds", epoch, f"seeds reaching {CLAIM_ACCURACY_PCT:g} %", "the claim"],
            rows,
            numeric={1, 2, 3},
        )
    )


def per_run(results: Sequence[RunResult], drew_from: str) -> str:
    """Each group's latest run: its confusion matrix and accuracy per class."""
    latest: dict[str, RunResult] = {}
    for result in sorted(results, key=lambda result: result.created_utc):
        latest[f"{run_label(result)} · {result.environment.device_name}"] = result
    parts = [
        f'<p class="note">The latest run of each experiment × implementation × machine '
        f"({len(latest)} of {esc(drew_from)}).</p>"
    ]
    for label, result in latest.items():
        worst = min(
            (acc, digit)
            for digit, acc in enumerate(result.per_class_accuracy_pct)
            if acc is not None
        )
        alt = (
            f"Confusion matrix and accuracy per class of run {result.run_id} ({label}): "
            f"overall {result.summary.final_test_accuracy_pct:.2f} %, weakest digit {worst[1]} "
            f"at {worst[0]:.2f} %."
        )
        parts += [
            f'<h3>{esc(label)}</h3><p class="meta">run <code>{esc(result.run_id)}</code>, '
            f"seed {result.config.seed}</p>",
            figure(confusion_figure(result, f"{result.run_id} · {label}"), alt, alt),
            table(
                ["digit", *map(str, range(10))],
                [
                    ["accuracy %"]
                    + [
                        "–" if acc is None else f"{acc:.2f}"
                        for acc in result.per_class_accuracy_pct
                    ]
                ],
                numeric=set(range(1, 11)),
            ),
        ]
    return "".join(parts)


def _ab(comparison: AbComparison) -> str:
    effect = comparison.effect
    rows = [
        [
            str(replicate.order),
            esc(replicate.variant),
            fmt_rate(replicate.result.summary.steady_train_images_per_s),
            f"{replicate.result.summary.final_test_accuracy_pct:.2f}",
            esc(replicate.result.environment.torch),
            f"<code>{esc(fmt_commits([replicate.result]))}</code>",
            f"<code>{esc(replicate.result.run_id)}</code>",
        ]
        for replicate in comparison.replicates
    ]
    alt = (
        f"Training throughput of the {len(comparison.replicates)} replicates of "
        f"{comparison.folder} in run order, A and B apart. B against A: {effect.describe()}."
    )
    return (
        f"<h3>{esc(comparison.folder)}</h3>"
        f"<p>B against A: {verdict_badge(effect.verdict)} {esc(effect.describe())}<br>"
        f"<small>{esc(effect.reason)}</small></p>"
        + figure(ab_figure(comparison.replicates, f"A/B · {comparison.folder}"), alt, alt)
        + table(
            ["order", "variant", "train images/s", "test accuracy %", "torch", "commit", "run"],
            rows,
            numeric={0, 2, 3},
        )
    )


def environment(results: Sequence[RunResult]) -> str:
    """Each machine's fingerprint: every field of the results' environments, with every value
    seen (versions and commits differ from run to run)."""
    # Each field's distinct values, compared as they are (a year holds few): turning every
    # run's environment into text would cost seconds at 10,000 runs.
    machines: dict[str, dict[str, list[object]]] = defaultdict(dict)
    names = [field.name for field in fields(Environment)]
    for result in results:
        hardware = hardware_of(result.environment)
        name = f"{hardware.device_name} · {hardware.cpu_name} · {hardware.threads} threads"
        seen_values = machines[name]
        for key in names:
            value = getattr(result.environment, key)
            seen = seen_values.setdefault(key, [])
            if value not in seen:
                seen.append(value)
    return "".join(
        f"<h3>{esc(name)}</h3>"
        + table(
            ["field", "value(s)"],
            [
                [esc(key), esc(_listed(list(dict.fromkeys(map(_as_text, values)))))]
                for key, values in seen_values.items()
            ],
        )
        for name, seen_values in machines.items()
    )


def _as_text(value: object) -> str:
    """A field's value as the table shows it: a nested record as its fields, as before."""
    return str(asdict(value)) if is_dataclass(value) and not isinstance(value, type) else str(value)


def _listed(values: list[str], most: int = 8) -> str:
    """The values in the order seen; past `most`, the last ones and how many were left out."""
    if len(values) <= most:
        return ", ".join(values)
    return f"{len(values) - most} more, then " + ", ".join(values[-most:])


def html_report(inputs: ReportInputs) -> str:
    """The report's HTML: each section only when the inputs have its data."""
    results = [result for _, result in inputs.results]
    sections: list[tuple[str, str, str]] = []  # id, heading, body
    if inputs.latest.groups:
        sections.append(("overview", "Overview", overview(inputs.latest)))
    histories = [h for h in inputs.histories if len(h.sittings) > 1]
    if histories:
        sections.append(
            (
                "history",
                "History",
                "<p>Training throughput over time, every run. A change point is a change of "
                "level between sittings beyond what the drift between sittings explains (a t "
                "test on the sittings' medians, allowing for the search) and beyond the speed "
                "margin; where the commit and torch did not change with it, the machine did."
                "</p>" + "".join(_history(h) for h in histories),
            )
        )
    if inputs.speedups:
        sections.append(("devices", "Devices", devices(inputs.speedups)))
    drew_from = f"the {plural(len(inputs.drawn), 'run')} of each group's latest sitting"
    if inputs.left_out:
        drew_from += f"; {inputs.left_out}"
    if inputs.curves:
        sections.append(
            (
                "curves",
                "Curves",
                f"<p>The seed script's claim: <strong>{esc(CLAIM)}</strong>.</p>"
                f'<p class="note">Drawn from {esc(drew_from)}.</p>'
                + "".join(_curves(c) for c in inputs.curves),
            )
        )
    if inputs.drawn:
        sections.append(("per-run", "Per run", per_run(inputs.drawn, drew_from)))
    if inputs.ab:
        sections.append(("ab", "A/B", "".join(_ab(c) for c in inputs.ab)))
    if results:
        sections.append(("environment", "Environment", environment(results)))
    if inputs.problems:
        sections.append(
            (
                "skipped",
                "Skipped files",
                f"<p>{plural(len(inputs.problems), 'file')} could not be used; each with its "
                "reason:</p><details><summary>The files and why</summary><ul>"
                + "".join(
                    f"<li><code>{esc(path)}</code>: {esc(reason)}</li>"
                    for path, reason in inputs.problems
                )
                + "</ul></details>",
            )
        )
    nav = "".join(f'<li><a href="#{key}">{esc(heading)}</a></li>' for key, heading, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{esc(heading)}</h2>{content}</section>'
        for key, heading, content in sections
    )
    sources = ", ".join(f"<code>{esc(path)}</code>" for path in inputs.sources)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mnist-bench report</title><style>{STYLE}</style></head><body>"
        f'<header><h1>mnist-bench report</h1><p class="meta">{len(results)} runs from '
        f"{sources}; generated {esc(inputs.generated_utc)}.</p>"
        f'<nav aria-label="sections"><ul>{nav}</ul></nav></header>'
        f"<main>{body}</main></body></html>\n"
    )
