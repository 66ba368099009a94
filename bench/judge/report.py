"""What the HTML report shows, judged: the `ab` folders read back by the sequential rule, the
curves per experiment, and the inputs bench.show.html renders. Pure."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.judge.claim import DeviceFigures
from bench.judge.compare import Comparison
from bench.judge.devices import DeviceSpeedup
from bench.judge.history import History
from bench.judge.sequential import ALPHA, pair_seconds, replay
from bench.judge.stats import SpeedEffect
from bench.storage.experiment import Identity, identity_of
from bench.storage.records import Replicate
from bench.storage.results import RunResult


def foreign_replicate(replicates: Sequence[Replicate]) -> str | None:
    """Why one variant's replicates are not one series, or None: each must be the experiment,
    implementation and machine that most of the variant's replicates are (the first of them on
    a tie); the first that is not is named, with the fields that differ."""
    by_variant: dict[str | None, list[tuple[Replicate, Identity]]] = {}
    for replicate in replicates:
        by_variant.setdefault(replicate.variant, []).append(
            (replicate, identity_of(replicate.result))
        )
    for variant, found in by_variant.items():
        counts = Counter(ident for _, ident in found)
        usual = max(counts, key=lambda ident: counts[ident])  # the first of the most common
        for replicate, ident in found:
            if ident != usual:
                return (
                    f"variant {variant}: {replicate.path.name} is not a replicate of its other "
                    f"{counts[usual]} ({', '.join(ident.differences(usual))})"
                )
    return None


def pair_log_ratios(replicates: Sequence[Replicate]) -> list[float]:
    """log(B / A) of each complete pair, the pairs in run order."""
    ratios = []
    for first, second in zip(replicates[::2], replicates[1::2], strict=False):
        rates = {
            replicate.variant: replicate.result.summary.steady_train_images_per_s
            for replicate in (first, second)
        }
        if rates.keys() == {"A", "B"}:  # a folder read back may hold a broken pair
            ratios.append(math.log(rates["B"] / rates["A"]))
    return ratios


def judge_ab(replicates: Sequence[Replicate], margin: float, alpha: float = ALPHA) -> SpeedEffect:
    """An `ab` folder's verdict read back: the sequential rule (at level `alpha`) over its
    pairs in run order, where `ab` stopped, or at its last pair (at least one)."""
    ratios = pair_log_ratios(replicates)
    starts = [datetime.fromisoformat(replicate.result.created_utc) for replicate in replicates[::2]]
    seconds = pair_seconds(starts)
    outcome = replay(
        ratios, seconds, margin, max_pairs=len(ratios), max_time_s=math.inf, alpha=alpha
    )
    assert outcome is not None, "the last pair is the cap: replay always ends"
    return outcome[0]


@dataclass
class AbComparison:
    """An `ab` folder read back: its replicates in run order and B judged against A."""

    folder: Path
    replicates: list[Replicate]
    effect: SpeedEffect


@dataclass
class Curves:
    """The runs of one experiment, every device, and the claim judged per device."""

    experiment: str
    results: list[RunResult]
    devices: list[DeviceFigures]


@dataclass
class ReportInputs:
    """Everything the HTML report shows, judged here; bench.show.html only renders it."""

    sources: list[Path]
    results: list[tuple[Path, RunResult]]
    latest: Comparison  # each group's latest sitting against its baseline
    histories: list[History]
    speedups: list[DeviceSpeedup]
    curves: list[Curves]
    ab: list[AbComparison]
    problems: list[tuple[Path, str]]
    generated_utc: str
    drawn: list[RunResult]  # each group's latest sitting, whole: curves and per-run sections
    left_out: str | None = None  # what the latest sittings leave out of those sections


AB_VARIANTS = ("A", "B")


def ab_comparisons(
    results: Sequence[tuple[Path, RunResult]], level_of: Callable[..., tuple[float, float]]
) -> tuple[list[AbComparison], list[tuple[Path, str]]]:
    """The `ab` series among the results (in a folder whose A/ and B/ hold results: one per
    group `ab` gave its replicates, results of before the groups together), each judged like
    `ab` judges it, by the margin and level `level_of(folder, group=…)` gives the series,
    replicates in the order they ran (by their number, else their start); and the series left
    out because a variant mixes runs of another experiment, implementation or machine (why)."""
    by_series: dict[tuple[Path, str | None], list[tuple[Path, RunResult]]] = {}
    for path, result in results:
        if path.parent.name in AB_VARIANTS:
            by_series.setdefault((path.parent.parent, result.group), []).append((path, result))
    found, refused = [], []
    for (folder, group), runs in by_series.items():
        if {path.parent.name for path, _ in runs} != set(AB_VARIANTS):
            continue
        runs.sort(key=lambda run: (run[1].replicate or 0, run[1].created_utc, run[1].run_id))
        replicates = [
            Replicate(order, path, result, variant=path.parent.name)
            for order, (path, result) in enumerate(runs, 1)
        ]
        mixed = foreign_replicate(replicates)
        if mixed:
            refused.append((folder, f"not judged as an A/B: {mixed}"))
        elif pair_log_ratios(replicates):
            margin, alpha = level_of(folder, group=group)
            found.append(AbComparison(folder, replicates, judge_ab(replicates, margin, alpha)))
    return found, refused
