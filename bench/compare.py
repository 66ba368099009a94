"""`compare`: results side by side, grouped by config, judged against recorded baselines.

Produces one plain `Comparison`; bench.report renders it as a table, markdown, CSV or JSON.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.baselines import (
    Baseline,
    find_baseline,
    hardware_key,
    hardware_of,
    is_baseline_document,
    load_baselines,
)
from bench.results import ResultFileError, RunResult, json_files, read_json

OK, FASTER, SLOWER = "ok", "faster", "slower"
LESS_ACCURATE, DIFFERENT_WEIGHTS, NO_BASELINE = "less accurate", "different weights", "no baseline"
REGRESSIONS = (SLOWER, LESS_ACCURATE, DIFFERENT_WEIGHTS)


@dataclass
class Tolerances:
    throughput_pct: float = 10.0
    accuracy_points: float = 0.3


@dataclass
class RunRow:
    path: Path
    result: RunResult
    verdicts: list[str]
    baseline: str | None = None
    why_no_baseline: str | None = None
    throughput_delta_pct: float | None = None
    accuracy_delta_points: float | None = None


@dataclass
class Spread:
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), std, min(values), max(values))


@dataclass
class Group:
    """Runs of one config on one device: the seeds' spread."""

    config: str
    device: str
    device_type: str
    runs: int
    seeds: list[int]
    accuracy_pct: Spread
    train_images_per_s: Spread
    time_to_target_s: Spread | None
    reached_target: int
    speedup_vs_cpu: float | None = None


@dataclass
class CrossDevice:
    config: str
    seed: int
    cpu_run: str
    other_run: str
    other_device: str
    accuracy_delta_points: float  # other minus CPU
    relative_l2: float | None  # ‖w_other − w_cpu‖ / ‖w_cpu‖, when both saved weights


@dataclass
class Comparison:
    rows: list[RunRow]
    groups: list[Group]
    cross_device: list[CrossDevice]
    problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def has_regression(self) -> bool:
        return any(v in REGRESSIONS for row in self.rows for v in row.verdicts)


def config_label(result: RunResult) -> str:
    c = result.config
    flags = [
        name
        for name, on in (
            ("channels-last", bool(c.channels_last)),
            ("compile", c.compile),
            ("cuda-graphs", c.cuda_graphs),
            ("nondeterministic", not c.deterministic),
            (f"{c.world_size} ranks {'weak' if c.per_rank_batch else 'strong'}", c.world_size > 1),
        )
        if on
    ]
    steps = f" max{c.max_steps_per_epoch}" if c.max_steps_per_epoch else ""
    return " ".join(
        [
            f"{c.loader} {c.precision} {c.optimizer} e{c.epochs} b{c.batch_size} lr{c.lr:g}{steps}",
            *flags,
        ]
    )


def collect(paths: Iterable[Path]) -> tuple[list[tuple[Path, RunResult]], list[tuple[Path, str]]]:
    """Results from files and folders (recursively); the rest as (path, reason)."""
    results, problems = [], []
    for root in paths:
        if not root.exists():
            problems.append((root, "no such file or folder"))
            continue
        for path in json_files(root):
            try:
                data = read_json(path)
                if is_baseline_document(data):
                    continue  # a baseline under a results folder is not a run
                results.append((path, RunResult.from_dict(data)))
            except ResultFileError as error:
                problems.append((path, str(error)))
    return results, problems


def judge(path: Path, result: RunResult, baseline: Baseline, tolerances: Tolerances) -> RunRow:
    reference = baseline.seed_figures(result.config.seed)
    assert reference is not None, "find_baseline only matches a baseline holding this seed"
    rates = [run.steady_train_images_per_s for run in baseline.runs]
    rate = result.summary.steady_train_images_per_s
    throughput_delta = 100 * (rate / statistics.fmean(rates) - 1)
    accuracy_delta = result.summary.final_test_accuracy_pct - reference.final_test_accuracy_pct
    verdicts = []
    if result.config.deterministic and result.weights_sha256 != reference.weights_sha256:
        verdicts.append(DIFFERENT_WEIGHTS)
    if accuracy_delta < -tolerances.accuracy_points:
        verdicts.append(LESS_ACCURATE)
    # Outside the range the baseline's seeds spanned, by more than the tolerance: on a shared
    # machine that range is the noise already seen.
    if rate < min(rates) * (1 - tolerances.throughput_pct / 100):
        verdicts.append(SLOWER)
    elif rate > max(rates) * (1 + tolerances.throughput_pct / 100):
        verdicts.append(FASTER)
    return RunRow(
        path=path,
        result=result,
        verdicts=verdicts or [OK],
        baseline=baseline.name,
        throughput_delta_pct=throughput_delta,
        accuracy_delta_points=accuracy_delta,
    )


def _groups(rows: list[RunRow]) -> list[Group]:
    by_key: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for row in rows:
        device = hardware_key(hardware_of(row.result.environment))["device"]
        by_key[(config_label(row.result), device)].append(row.result)
    groups = []
    for (config, device), results in by_key.items():
        reached = [r.summary.time_to_target_s for r in results if r.summary.time_to_target_s]
        groups.append(
            Group(
                config=config,
                device=device,
                device_type=results[0].environment.device_type,
                runs=len(results),
                seeds=sorted(r.config.seed for r in results),
                accuracy_pct=Spread.of([r.summary.final_test_accuracy_pct for r in results]),
                train_images_per_s=Spread.of(
                    [r.summary.steady_train_images_per_s for r in results]
                ),
                time_to_target_s=Spread.of(reached) if reached else None,
                reached_target=len(reached),
            )
        )
    cpu_rate = {g.config: g.train_images_per_s.mean for g in groups if g.device_type == "cpu"}
    for group in groups:
        if group.device_type != "cpu" and group.config in cpu_rate:
            group.speedup_vs_cpu = group.train_images_per_s.mean / cpu_rate[group.config]
    return groups


def relative_l2(path_a: Path, path_b: Path) -> float:
    """‖a − b‖ / ‖b‖ over every tensor of two saved state_dicts."""
    import torch

    a = torch.load(path_a, map_location="cpu", weights_only=True)
    b = torch.load(path_b, map_location="cpu", weights_only=True)
    difference = sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in b)
    norm = sum(float(b[k].double().pow(2).sum()) for k in b)
    return math.sqrt(difference / norm)


def _cross_device(rows: list[RunRow]) -> list[CrossDevice]:
    by_config_seed: dict[tuple[str, int], list[RunRow]] = defaultdict(list)
    for row in rows:
        by_config_seed[(config_label(row.result), row.result.config.seed)].append(row)
    pairs = []
    for (config, seed), group in by_config_seed.items():
        cpu = next((r for r in group if r.result.environment.device_type == "cpu"), None)
        if cpu is None:
            continue
        for other in group:
            if other.result.environment.device_type == "cpu":
                continue
            distance = None
            if cpu.result.weights_file and other.result.weights_file:
                cpu_weights = cpu.path.parent / cpu.result.weights_file
                other_weights = other.path.parent / other.result.weights_file
                if cpu_weights.exists() and other_weights.exists():
                    distance = relative_l2(other_weights, cpu_weights)
            pairs.append(
                CrossDevice(
                    config=config,
                    seed=seed,
                    cpu_run=cpu.result.run_id,
                    other_run=other.result.run_id,
                    other_device=other.result.environment.device_name,
                    accuracy_delta_points=other.result.summary.final_test_accuracy_pct
                    - cpu.result.summary.final_test_accuracy_pct,
                    relative_l2=distance,
                )
            )
    return pairs


def compare(
    results: list[tuple[Path, RunResult]],
    baselines: list[Baseline],
    tolerances: Tolerances,
    problems: list[tuple[Path, str]] | None = None,
) -> Comparison:
    rows = []
    for path, result in results:
        baseline, why = find_baseline(result, baselines)
        if baseline is None:
            rows.append(RunRow(path, result, [NO_BASELINE], why_no_baseline=why))
        else:
            rows.append(judge(path, result, baseline, tolerances))
    rows.sort(key=lambda r: (config_label(r.result), r.result.config.device, r.result.config.seed))
    return Comparison(rows, _groups(rows), _cross_device(rows), list(problems or []))


def compare_paths(
    paths: Iterable[Path], baselines_path: Path, tolerances: Tolerances
) -> Comparison:
    """`compare` over results files or folders and a baselines folder (absent: none)."""
    results, problems = collect(paths)
    baselines, baseline_problems = (
        load_baselines(baselines_path) if baselines_path.exists() else ([], [])
    )
    return compare(results, baselines, tolerances, problems + baseline_problems)
