"""The same experiment on the CPU and on other devices: speed-up with its interval, accuracy
difference over seeds, and the distance between the weights of the same seed."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from bench.judge.compare import Comparison, run_label
from bench.judge.stats import SpeedEffect, speedup
from bench.judge.verdicts import RunRow
from bench.storage.experiment import Identity, identity_of


@dataclass
class DeviceSpeedup:
    experiment_cpu: str  # the CPU group: experiment · implementation · device
    other: str  # the other device's group, likewise
    speed: SpeedEffect  # the other device against the CPU: its ratio is the speed-up
    accuracy_delta_points: float  # mean over seeds, the other device minus the CPU
    relative_l2: list[float]  # per seed run on both with weights kept

    @property
    def median_relative_l2(self) -> float | None:
        return statistics.median(self.relative_l2) if self.relative_l2 else None


def _label(rows: list[RunRow]) -> str:
    result = rows[0].result
    return f"{run_label(result)} · {result.environment.device_name}"


def _rates(rows: list[RunRow]) -> list[float]:
    return [row.result.summary.steady_train_images_per_s for row in rows]


def _accuracy(rows: list[RunRow]) -> float:
    return statistics.fmean(row.result.summary.final_test_accuracy_pct for row in rows)


def device_speedups(comparison: Comparison) -> list[DeviceSpeedup]:
    """Each non-CPU group against the fastest CPU group (by median) of the same experiment."""
    by_identity: dict[Identity, list[RunRow]] = defaultdict(list)
    for row in comparison.rows:
        by_identity[identity_of(row.result)].append(row)
    cpus: dict[object, list[RunRow]] = {}
    for key, rows in by_identity.items():
        best = cpus.get(key.experiment)
        faster = best is None or statistics.median(_rates(rows)) > statistics.median(_rates(best))
        if rows[0].result.environment.device_type == "cpu" and faster:
            cpus[key.experiment] = rows
    speedups = []
    for key, rows in by_identity.items():
        cpu_rows = cpus.get(key.experiment)
        if cpu_rows is None or rows[0].result.environment.device_type == "cpu":
            continue
        ids = {row.result.run_id for row in rows}
        speedups.append(
            DeviceSpeedup(
                experiment_cpu=_label(cpu_rows),
                other=_label(rows),
                speed=speedup(_rates(cpu_rows), _rates(rows)),
                accuracy_delta_points=_accuracy(rows) - _accuracy(cpu_rows),
                relative_l2=[
                    pair.relative_l2
                    for pair in comparison.cross_device
                    if pair.other_run in ids and pair.relative_l2 is not None
                ],
            )
        )
    return speedups
