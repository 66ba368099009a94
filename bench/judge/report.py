"""What the HTML report shows, judged: the `ab` folders read back by the sequential rule, the
curves per experiment, and the inputs bench.show.html renders. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.judge.claim import DeviceFigures
from bench.judge.compare import Comparison
from bench.judge.devices import DeviceSpeedup
from bench.judge.history import History
from bench.judge.sequential import pair_seconds, replay
from bench.judge.stats import SpeedEffect
from bench.storage.records import Replicate
from bench.storage.results import RunResult


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


def judge_ab(replicates: Sequence[Replicate], margin: float) -> SpeedEffect:
    """An `ab` folder's verdict read back: the sequential rule over its pairs in run order,
    where `ab` stopped, or at its last pair (at least one)."""
    ratios = pair_log_ratios(replicates)
    starts = [datetime.fromisoformat(replicate.result.created_utc) for replicate in replicates[::2]]
    seconds = pair_seconds(starts)
    outcome = replay(ratios, seconds, margin, max_pairs=len(ratios), max_time_s=math.inf)
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


def ab_comparisons(results: Sequence[tuple[Path, RunResult]], margin: float) -> list[AbComparison]:
    """The `ab` folders among the results (a folder whose A/ and B/ hold results), each
    judged like `ab` judges it; replicates in the order they started."""
    by_folder: dict[Path, list[tuple[Path, RunResult]]] = {}
    for path, result in results:
        if path.parent.name in AB_VARIANTS:
            by_folder.setdefault(path.parent.parent, []).append((path, result))
    found = []
    for folder, runs in by_folder.items():
        if {path.parent.name for path, _ in runs} != set(AB_VARIANTS):
            continue
        runs.sort(key=lambda run: (run[1].created_utc, run[1].run_id))
        replicates = [
            Replicate(order, path, result, variant=path.parent.name)
            for order, (path, result) in enumerate(runs, 1)
        ]
        if pair_log_ratios(replicates):
            found.append(AbComparison(folder, replicates, judge_ab(replicates, margin)))
    return found
