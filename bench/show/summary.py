"""`compare --summary`: Markdown for a pull-request comment or a CI job summary — the verdicts
first, one line each, then the tables."""

from __future__ import annotations

from bench.judge.compare import Comparison
from bench.judge.stats import REGRESSIONS
from bench.show.tables import comparison_tables, notes, to_markdown


def verdict_lines(comparison: Comparison) -> list[str]:
    """One line per group verdict (speed, accuracy) and per run that failed against its seed,
    regressions first."""
    lines: list[tuple[bool, str]] = []
    for group in comparison.verdicts:
        speed = group.speed.describe() if group.speed else f"inconclusive: {group.why_no_speed}"
        lines.append((group.verdicts[0] in REGRESSIONS, f"**{group.label}**: speed {speed}"))
        lines.append(
            (
                group.accuracy.verdict in REGRESSIONS,
                f"**{group.label}**: accuracy {group.accuracy.describe()}",
            )
        )
    for row in comparison.rows:
        failed = [verdict for verdict in row.verdicts if verdict in REGRESSIONS]
        if failed:
            lines.append((True, f"run `{row.result.run_id}`: {', '.join(failed)} against its seed"))
    return [line for regression, line in sorted(lines, key=lambda item: not item[0])]


def summary_markdown(comparison: Comparison) -> str:
    """The outcome in one line, each verdict, then the tables and notes of `--format
    markdown`."""
    if comparison.regressions:
        outcome = "**regression**"
    elif comparison.why_cannot_judge:
        outcome = f"**cannot judge** ({comparison.why_cannot_judge})"
    elif comparison.undecided:
        outcome = f"no regression found, but inconclusive ({comparison.undecided})"
    else:
        outcome = "no regression"
    lines = [f"## mnist-bench compare: {outcome}", ""]
    lines += [f"- {line}" for line in verdict_lines(comparison)]
    tables = to_markdown(comparison_tables(comparison), notes(comparison))
    return "\n".join(lines).rstrip() + "\n\n" + tables
