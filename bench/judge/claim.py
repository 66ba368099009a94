"""The seed script's claim, judged: per experiment × implementation × machine (the identity of
bench.storage.experiment, never the device alone: runs of another length, loader or thread count
are not reruns), accuracy per epoch over seeds, who reached 99 %, speed, and whether reruns of
a seed were bitwise identical."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from bench.config.settings import plural
from bench.judge.stats import Spread
from bench.storage.experiment import (
    Key,
    experiment_label,
    identity_of,
    implementation_label,
)
from bench.storage.results import RunResult

CLAIM = "≈99% test accuracy after about 4 epochs"
CLAIM_EPOCH = 4
CLAIM_ACCURACY_PCT = 99.0
# "≈99%": we count the claim as reproduced when the seeds' mean at epoch 4 is within a quarter
# point of 99%.
CLAIM_SLACK_POINTS = 0.25


@dataclass
class DeviceFigures:
    label: str  # experiment · implementation · device
    experiment: Key  # runs of one experiment are comparable across devices
    device: str
    device_type: str
    seeds: list[int]
    accuracy_by_epoch: list[Spread]  # over seeds, per epoch
    reached: dict[int, int | None]  # seed -> first epoch at >= 99%, or None
    train_images_per_s: float  # mean over seeds of the steady-state figure
    rerun_groups: int  # seeds run more than once
    reruns_identical: bool


def _device_figures(runs: list[RunResult]) -> DeviceFigures:
    epochs = min(len(run.epochs) for run in runs)
    by_seed: dict[int, list[RunResult]] = defaultdict(list)
    for run in runs:
        by_seed[run.config.seed].append(run)
    first_of_seed = [group[0] for group in by_seed.values()]
    accuracy_by_epoch = [
        Spread.of([run.epochs[index].test_accuracy_pct for run in first_of_seed])
        for index in range(epochs)
    ]
    reached = {
        run.config.seed: next(
            (m.epoch for m in run.epochs if m.test_accuracy_pct >= CLAIM_ACCURACY_PCT), None
        )
        for run in first_of_seed
    }
    reruns = [group for group in by_seed.values() if len(group) > 1]
    first = runs[0]
    return DeviceFigures(
        label=f"{experiment_label(first)} · {implementation_label(first)} · "
        f"{first.environment.device_name}",
        experiment=identity_of(first).experiment,
        device=first.environment.device_name,
        device_type=runs[0].environment.device_type,
        seeds=sorted(by_seed),
        accuracy_by_epoch=accuracy_by_epoch,
        reached=reached,
        train_images_per_s=statistics.fmean(
            run.summary.steady_train_images_per_s for run in first_of_seed
        ),
        rerun_groups=len(reruns),
        reruns_identical=all(len({run.weights_sha256 for run in group}) == 1 for group in reruns),
    )


def claim_verdict(figures: DeviceFigures) -> str:
    if len(figures.accuracy_by_epoch) < CLAIM_EPOCH:
        return f"not tested (only {plural(len(figures.accuracy_by_epoch), 'epoch')})"
    at_claim = figures.accuracy_by_epoch[CLAIM_EPOCH - 1]
    mean, std = at_claim.mean, at_claim.std
    reproduced = mean >= CLAIM_ACCURACY_PCT - CLAIM_SLACK_POINTS
    word = "reproduced" if reproduced else "not reproduced"
    return (
        f"{word}: mean test accuracy after epoch {CLAIM_EPOCH} is {mean:.2f}% ± {std:.2f} over "
        f"{plural(len(figures.seeds), 'seed')} (claim: {CLAIM}; counted as reproduced at ≥ "
        f"{CLAIM_ACCURACY_PCT - CLAIM_SLACK_POINTS:.2f}%)"
    )


def device_figures(runs: list[RunResult]) -> list[DeviceFigures]:
    """One DeviceFigures per experiment × implementation × machine, in order of appearance."""
    by_identity: dict[object, list[RunResult]] = defaultdict(list)
    for run in runs:
        by_identity[identity_of(run)].append(run)
    return [_device_figures(group) for group in by_identity.values()]
