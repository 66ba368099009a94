"""A run's training throughput from its stored samples: which are steady, and the candidate
estimators, one of which is the headline (`run` takes it; `compare` re-takes a run's figure by
a baseline's estimator)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Protocol


class EpochSamples(Protocol):
    """What an estimator reads of an epoch (bench.storage.results.EpochMetrics has it), named
    here so that the results schema can import the estimators' ids without a cycle."""

    train_images_per_s: float
    block_images_per_s: list[float]


def steady_median(per_epoch: Sequence[float]) -> float:
    """The median over epochs 2..n: epoch 1 pays for warm-up (itself when it is the only one)."""
    return statistics.median(per_epoch[1:] or per_epoch)


def steady_blocks(epochs: Sequence[EpochSamples]) -> list[float]:
    """Block throughputs of epochs 2..n; of a single epoch, its blocks after the first (which
    pays for warm-up) when it has more than one."""
    if len(epochs) > 1:
        return [rate for epoch in epochs[1:] for rate in epoch.block_images_per_s]
    blocks = epochs[0].block_images_per_s
    return list(blocks[1:] or blocks)


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile, linear between order statistics (numpy's default)."""
    import numpy as np

    return float(np.quantile(values, q))


def _trimmed_mean(values: list[float], share: float) -> float:
    from scipy.stats import trim_mean

    return float(trim_mean(values, share))


# Each maps a run's steady epoch and block throughputs to one figure, under a stable id that
# files store (LABELS says it in words). Interference on a shared machine only ever slows a
# block down, so upper quantiles of the blocks are candidates too.
ESTIMATORS: dict[str, Callable[[list[float], list[float]], float]] = {
    "epoch-median": lambda epochs, blocks: statistics.median(epochs),
    "block-median": lambda epochs, blocks: statistics.median(blocks),
    "block-trimmed-mean-20": lambda epochs, blocks: _trimmed_mean(blocks, 0.2),
    "block-p75": lambda epochs, blocks: _quantile(blocks, 0.75),
    "block-p90": lambda epochs, blocks: _quantile(blocks, 0.9),
}
LABELS = {
    "epoch-median": "median of epochs 2..n",
    "block-median": "median of blocks",
    "block-trimmed-mean-20": "20 % trimmed mean of blocks",
    "block-p75": "upper quartile of blocks",
    "block-p90": "90th percentile of blocks",
}
# Files written before the ids stored the labels.
FORMER_NAMES = {label: estimator for estimator, label in LABELS.items()}
EPOCH_MEDIAN = "epoch-median"
BLOCK_ESTIMATORS = [name for name in ESTIMATORS if name != EPOCH_MEDIAN]
HEADLINE = "block-p75"


def estimate(epochs: Sequence[EpochSamples], estimator: str) -> float:
    """The run's training throughput by `estimator`; by the epoch median when it has no
    blocks (the named block estimator needs them)."""
    per_epoch = [m.train_images_per_s for m in epochs]
    blocks = steady_blocks(epochs)
    if not blocks:
        return steady_median(per_epoch)
    return ESTIMATORS[estimator](per_epoch[1:] or per_epoch, blocks)
