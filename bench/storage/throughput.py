"""A run's training throughput from its stored samples: which are steady, and the candidate
estimators, one of which is the headline (`run` takes it; `compare` re-takes a run's figure by
a baseline's estimator)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.storage.results import EpochMetrics


def steady_median(per_epoch: Sequence[float]) -> float:
    """The median over epochs 2..n: epoch 1 pays for warm-up (itself when it is the only one)."""
    return statistics.median(per_epoch[1:] or per_epoch)


def steady_blocks(epochs: Sequence[EpochMetrics]) -> list[float]:
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


# Each maps a run's steady epoch and block throughputs to one figure. Interference on a shared
# machine only ever slows a block down, so upper quantiles of the blocks are candidates too.
ESTIMATORS: dict[str, Callable[[list[float], list[float]], float]] = {
    "median of epochs 2..n": lambda epochs, blocks: statistics.median(epochs),
    "median of blocks": lambda epochs, blocks: statistics.median(blocks),
    "20 % trimmed mean of blocks": lambda epochs, blocks: _trimmed_mean(blocks, 0.2),
    "upper quartile of blocks": lambda epochs, blocks: _quantile(blocks, 0.75),
    "90th percentile of blocks": lambda epochs, blocks: _quantile(blocks, 0.9),
}
EPOCH_MEDIAN = "median of epochs 2..n"
BLOCK_ESTIMATORS = [name for name in ESTIMATORS if name != EPOCH_MEDIAN]
HEADLINE = "upper quartile of blocks"


def estimate(epochs: Sequence[EpochMetrics], estimator: str) -> float:
    """The run's training throughput by `estimator`; by the epoch median when it has no
    blocks (the named block estimator needs them)."""
    per_epoch = [m.train_images_per_s for m in epochs]
    blocks = steady_blocks(epochs)
    if not blocks:
        return steady_median(per_epoch)
    return ESTIMATORS[estimator](per_epoch[1:] or per_epoch, blocks)
