"""A synthetic year of results built from one real result, to test history at scale.

    python scripts/synthetic_year.py OUT [--runs 2000] [--drift-only] [--unreadable N] [--seed S]

Every file is the committed real result (tests/data/cpu-tiny-result.json) with these changed:
its run id, start time, seed, `run --repeat` group, commit, torch version, machine and training
throughput, and its per-step losses stretched to a default 5-epoch run's 3,000 (so that a file
weighs what a real one does, about 70 KB). The year:

- sittings of RUNS_PER_SITTING runs (a `run --repeat` group, minutes apart), spread evenly over
  365 days from 2026-01-01, alternating between two machines (the real one and a second CPU);
- a new commit every COMMIT_EVERY sittings, torch 2.14.1 until 40 % of the year, then 2.15.0;
- each sitting's level drifts by DRIFT (sd of log), each run by RUN_NOISE about it;
- from 70 % of the year on, everything STEP slower, at a new commit (not with --drift-only);
- on the second machine only, 20 % faster from 30 % of the year on within one commit: the
  machine changed, not the code (not with --drift-only).

`--unreadable N` adds N files that are not results (bad JSON) among the good ones. The tests,
the scale benchmark (scripts/history.py scale) and the report's screenshot build their years
here.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REAL_RESULT = Path(__file__).resolve().parent.parent / "tests" / "data" / "cpu-tiny-result.json"
RUNS_PER_SITTING = 3
COMMIT_EVERY = 17  # sittings
DRIFT, RUN_NOISE = 0.03, 0.02
STEP, STEP_AT = 0.15, 0.7
MACHINE_STEP, MACHINE_STEP_AT = 0.20, 0.3
TORCH_UPGRADE_AT = 0.4
STEPS_OF_FIVE_EPOCHS = 3000
START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Year:
    folder: Path
    results: int
    sittings: int
    step_sitting: int | None  # the first sitting (of all, both machines) after the step
    machine_step_sitting: int | None


def second_machine(document: dict) -> None:
    """The real result's environment as another CPU: another model, AVX2 only."""
    environment = document["environment"]
    environment["device_name"] = environment["cpu_name"] = "AMD EPYC 7B13"
    if environment.get("cpu"):
        environment["cpu"]["model"] = 1
        environment["cpu"]["flags"] = ["avx2", "fma"]
    if environment.get("math"):
        environment["math"]["capability"] = "AVX2"
        environment["math"]["onednn_isa"] = "Intel AVX2"  # what an AVX2-only CPU can run


def build_year(
    folder: Path,
    runs: int = 2000,
    *,
    drift_only: bool = False,
    unreadable: int = 0,
    seed: int = 0,
    runs_per_sitting: int = RUNS_PER_SITTING,
) -> Year:
    """Write the year's result files into `folder` (made if missing)."""
    rng = random.Random(seed)
    real = json.loads(REAL_RESULT.read_text())
    first_loss = real["step_losses"][0]
    real["step_losses"] = [
        first_loss * math.exp(-step / 400) + 0.05 + 0.02 * rng.random()
        for step in range(STEPS_OF_FIVE_EPOCHS)
    ]
    base_rate = real["summary"]["steady_train_images_per_s"] * 100  # a 5-epoch run's rate
    other = copy.deepcopy(real)
    second_machine(other)
    sittings = math.ceil(runs / runs_per_sitting)
    every = timedelta(days=365) / sittings
    step_sitting = None if drift_only else round(STEP_AT * sittings)
    machine_step_sitting = None if drift_only else round(MACHINE_STEP_AT * sittings)
    if machine_step_sitting is not None and machine_step_sitting % COMMIT_EVERY == 0:
        machine_step_sitting += 1  # within a commit, never at its first sitting
    if step_sitting is not None:
        step_sitting -= step_sitting % COMMIT_EVERY  # at a new commit
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for sitting in range(sittings):
        on_second = sitting % 2 == 1
        template = other if on_second else real
        level = math.log(base_rate) + rng.gauss(0, DRIFT)
        if step_sitting is not None and sitting >= step_sitting:
            level += math.log1p(-STEP)
        if on_second and machine_step_sitting is not None and sitting >= machine_step_sitting:
            level += math.log1p(MACHINE_STEP)
        commit = f"{sitting // COMMIT_EVERY:07x}" + "c0ffee" * 5 + "ab"
        torch = "2.14.1" if sitting < TORCH_UPGRADE_AT * sittings else "2.15.0"
        started = START + sitting * every
        for replicate in range(1, runs_per_sitting + 1):
            if written == runs:
                break
            document = copy.deepcopy(template)
            moment = started + timedelta(minutes=3 * replicate)
            document["run_id"] = f"{moment:%Y%m%dT%H%M%SZ}-cpu-tensor-s{replicate}-y{written:05d}"
            document["created_utc"] = moment.isoformat()
            document["config"]["seed"] = replicate
            document["group"] = f"g{sitting:05d}"
            document["replicate"] = replicate
            document["environment"]["git_commit"] = commit
            document["environment"]["torch"] = torch
            document["summary"]["steady_train_images_per_s"] = math.exp(
                level + rng.gauss(0, RUN_NOISE)
            )
            (folder / f"{document['run_id']}.json").write_text(json.dumps(document, indent=1))
            written += 1
    for number in range(unreadable):
        (folder / f"broken-{number:05d}.json").write_text('{"schema_version": 3, "run_id": ')
    return Year(folder, written, sittings, step_sitting, machine_step_sitting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--drift-only", action="store_true")
    parser.add_argument("--unreadable", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    year = build_year(
        arguments.out,
        arguments.runs,
        drift_only=arguments.drift_only,
        unreadable=arguments.unreadable,
        seed=arguments.seed,
    )
    print(f"{year.results} results in {year.sittings} sittings written to {year.folder}")


if __name__ == "__main__":
    main()
