"""The README's statistics evidence, recomputed from stored results.

    python scripts/evidence.py estimators FOLDER...   run-to-run spread of each estimator
    python scripts/evidence.py ab FOLDER...           A/A false alarms and sensitivity
    python scripts/evidence.py ab --pool K FOLDER...  the same, K consecutive `ab`s pooled

`estimators`: each FOLDER holds fresh-process replicates of one configuration (`run --repeat`);
for every candidate estimator in bench.storage.throughput, the coefficient of variation of the runs'
figures. `ab`: each FOLDER is one `ab` of identical variants (A/ and B/); with each estimator,
the verdicts as measured and with B's figures scaled by 0.95 and 0.90 (a known slowdown).
`--pool K`: each comparison pools K consecutive FOLDERs (e.g. 10 + 10 runs from 5 + 5).
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from pathlib import Path

from bench.config.experiment import identity_of
from bench.config.settings import AB_MARGIN_PCT
from bench.judge.stats import compare_speeds
from bench.storage.files import collect
from bench.storage.throughput import ESTIMATORS, estimate

SCALES = (1.0, 0.95, 0.90)


def figures(folder: Path, estimator: str) -> list[float]:
    """Each run's training throughput by `estimator`, in run order; the runs must be
    replicates of one experiment × implementation × machine."""
    results = sorted((r for _, r in collect([folder])[0]), key=lambda r: r.created_utc)
    if len({identity_of(r) for r in results}) > 1:
        raise SystemExit(f"{folder} holds runs of more than one configuration")
    return [estimate(r.epochs, estimator) for r in results]


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values)


def successive_cv(values: list[float]) -> float:
    """Noise from differences of consecutive runs: blind to a slow trend of the machine."""
    steps = [(b - a) ** 2 for a, b in zip(values, values[1:], strict=False)]
    return (statistics.fmean(steps) / 2) ** 0.5 / statistics.fmean(values)


def estimators(folders: list[Path]) -> None:
    print("estimator | run-to-run CV per folder | the same from successive differences")
    for name in ESTIMATORS:
        rates = [figures(folder, name) for folder in folders]
        spreads = ", ".join(f"{100 * cv(r):.2f} %" for r in rates)
        successive = ", ".join(f"{100 * successive_cv(r):.2f} %" for r in rates)
        print(f"{name} | {spreads} | {successive}")


def ab(folders: list[Path], pool: int = 1) -> None:
    margin = AB_MARGIN_PCT / 100
    chunks = [folders[i : i + pool] for i in range(0, len(folders) - pool + 1, pool)]
    for name in ESTIMATORS:
        verdicts = {scale: Counter() for scale in SCALES}
        noise = []
        for chunk in chunks:
            a = [rate for folder in chunk for rate in figures(folder / "A", name)]
            b = [rate for folder in chunk for rate in figures(folder / "B", name)]
            for scale in SCALES:
                effect = compare_speeds(a, [rate * scale for rate in b], margin)
                verdicts[scale][effect.verdict] += 1
            noise.append(effect.noise_cv)
        counts = "; ".join(f"×{scale:.2f}: {dict(verdicts[scale])}" for scale in SCALES)
        print(
            f"{name} | noise median {100 * statistics.median(noise):.2f} % "
            f"({100 * min(noise):.2f}–{100 * max(noise):.2f}) | {len(chunks)} comparisons | "
            f"{counts}"
        )


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    pool = 1
    if arguments[:1] == ["--pool"]:
        pool, arguments = int(arguments[1]), arguments[2:]
    folders = [Path(p) for p in arguments]
    if command == "ab":
        ab(folders, pool)
    else:
        estimators(folders)
