"""The run's own summary statistics over its epochs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def steady_median(per_epoch: Sequence[float]) -> float:
    """The median over epochs 2..n: epoch 1 pays for warm-up (itself when it is the only one)."""
    return statistics.median(per_epoch[1:] or per_epoch)
