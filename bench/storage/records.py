"""Record types that measuring makes and showing reads, kept at the bottom so that neither
room imports the other: a peak probe's figures, a sweep point (with its schema), a replicate
of `run --repeat` or `ab`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass as schema

from bench.config.settings import AB_ALPHA, STRICT_SCHEMA, Count, Positive
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


AB_RECORD = "ab.txt"  # beside an `ab` folder's A/ and B/
AB_RECORD_MAX_BYTES = 1 << 20


@dataclass
class AbRecord:
    """What an `ab` folder records beside its replicates: the seed of the coin that ordered
    its pairs and each pair's order up to the cap (`ab --order-seed` repeats it), the margin it
    judged by (`report` judges the folder by the same), and the git revision each variant ran
    (`--a-rev/--b-rev`: the name given and its commit; none for the working tree)."""

    order_seed: int
    margin_pct: float
    orders: list[tuple[str, str]]
    revisions: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    alpha: float = AB_ALPHA  # the rule's level; written only when not `ab`'s own

    def text(self) -> str:
        lines = [
            "# an `mnist-bench ab`: its pair order (--order-seed repeats it) and margin",
            f"order-seed {self.order_seed}",
            f"margin-pct {self.margin_pct:g}",
            *([f"alpha {self.alpha!r}"] if self.alpha != AB_ALPHA else []),
            *(
                f"revision {name} {commit} {given}"
                for name, (given, commit) in self.revisions.items()
            ),
            *(f"{pair} {' '.join(order)}" for pair, order in enumerate(self.orders, 1)),
        ]
        return "\n".join(lines) + "\n"

    @staticmethod
    def path_for(folder: Path, group: str | None = None) -> Path:
        """Where the record of the `ab` whose replicates carry `group` lies in `folder`:
        `ab.txt`, or `ab-<group>.txt` for a later `ab` into the same folder."""
        own = folder / f"ab-{group}.txt"
        return own if group is not None and own.exists() else folder / AB_RECORD

    @classmethod
    def read(cls, folder: Path, group: str | None = None) -> AbRecord:
        """The record in `folder` (of the series `group`); ValueError saying why it cannot be
        read as one."""
        path = cls.path_for(folder, group)
        try:
            if not path.is_file() or path.stat().st_size > AB_RECORD_MAX_BYTES:
                raise ValueError(f"{path} is not a regular file of at most 1 MB")
            lines = [line.split() for line in path.read_text().splitlines() if line[:1] not in "#"]
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: {error}") from None
        try:
            (_, seed), (_, margin), *rest = lines
            revisions: dict[str, tuple[str, str]] = {}
            alpha, orders = AB_ALPHA, []
            for line in rest:
                match line:
                    case ["revision", name, commit, given]:
                        revisions[name] = (given, commit)
                    case ["alpha", value]:
                        alpha = float(value)
                    case [_, first, second]:
                        orders.append((first, second))
                    case _:
                        raise ValueError
            if not 0 < alpha <= AB_ALPHA:
                raise ValueError
            return cls(int(seed), float(margin), orders, revisions, alpha)
        except ValueError:
            raise ValueError(f"{path} is not an `ab` record") from None


BISECT_RECORD = "bisect.json"


@schema(config=STRICT_SCHEMA)
class BisectStepRecord:
    """One finished step of a `bisect`: the commit B ran, its `ab` folder, the verdict, and
    the estimated change (log B / A; the first step's sets the threshold of the others)."""

    commit: str
    subject: str
    folder: str
    verdict: str
    effect: str
    estimate: float


@schema(config=STRICT_SCHEMA)
class BisectRecord:
    """What a `bisect` folder holds beside its steps' `ab` folders: what it searches (so that
    a rerun into the folder resumes it, and only it) and each finished step."""

    good: str
    bad: str
    common_options: list[str]
    margin_pct: float
    alpha: float
    steps: list[BisectStepRecord]

    def same_search(self, other: BisectRecord) -> bool:
        """Whether `other` searches what this does, whatever steps either has done."""
        return dataclasses.replace(self, steps=[]) == dataclasses.replace(other, steps=[])
