"""Record types that measuring makes and showing reads, kept at the bottom so that neither
room imports the other: a peak probe's figures, a sweep point (with its schema), a replicate
of `run --repeat` or `ab`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass as schema

from bench.config.settings import STRICT_SCHEMA, Count, Positive
from bench.storage.results import AwareTimestamp, RunResult


@schema(config=STRICT_SCHEMA)
class Peak:
    matmul_flops_per_s: Positive
    copy_bytes_per_s: Positive
    matmul_size: Count
    copy_mb: Positive
    dtype: str
    precision: str
    measured_utc: AwareTimestamp


@schema(config=STRICT_SCHEMA)
class SweepPoint:
    """One device × threads × batch size of a `sweep`; a sweep document's `points`."""

    device: str
    device_name: str
    threads: Count
    batch_size: Count
    steps: Annotated[int, Field(ge=0)]
    train_images_per_s: Positive
    eval_images_per_s: Positive
    channels_last: bool
    optimizer: str
    precision: str


@dataclass
class Replicate:
    """One run of a series, in the order it ran: a `run --repeat` replicate (its group is in
    its result) or one side of an `ab` pair (`variant` "A" or "B")."""

    order: int  # position in the sequence, from 1
    path: Path
    result: RunResult
    variant: str | None = None  # `ab` only
