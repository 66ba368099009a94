"""Recorded baselines: each seed's figures for one experiment × implementation × machine.

Pydantic dataclasses, like results: strict types, finite figures within their meaning;
`results/baseline.schema.json` is generated from them."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from pydantic.dataclasses import dataclass

from bench.config.experiment import (
    Hardware,
    Identity,
    default_name,
    hardware_of,
    identity,
    identity_of,
)
from bench.config.settings import STRICT_SCHEMA, Percent, Positive, RunConfig
from bench.errors import BaselineError, ResultFileError
from bench.storage.files import (
    BASELINE,
    BASELINE_MARKER,
    document_kind,
    json_files,
    read_document,
    write_json_atomic,
)
from bench.storage.results import RunResult, check_version, validate_document

BASELINE_SCHEMA_VERSION = 2


@dataclass(config=STRICT_SCHEMA)
class SeedFigures:
    run_id: str
    seed: Annotated[int, Field(ge=0)]
    steady_train_images_per_s: Positive
    eval_images_per_s: Positive
    final_test_accuracy_pct: Percent
    time_to_target_s: Positive | None
    peak_host_rss_mb: Positive
    peak_device_mem_mb: Annotated[float, Field(ge=0, le=1e18)] | None
    weights_sha256: str
    torch: str


@dataclass(config=STRICT_SCHEMA)
class Baseline:
    name: str
    created_utc: str
    config: RunConfig  # its seed is the first run's; `runs` holds every seed
    hardware: Hardware
    data_sha256: str
    runs: Annotated[list[SeedFigures], Field(min_length=1)]
    baseline_schema_version: int = BASELINE_SCHEMA_VERSION

    def seed_figures(self, seed: int) -> SeedFigures | None:
        return next((run for run in self.runs if run.seed == seed), None)

    @property
    def identity(self) -> Identity:
        return identity(self.config, self.hardware, self.data_sha256)


BASELINE_SCHEMA = TypeAdapter(Baseline)


def figures_of(result: RunResult) -> SeedFigures:
    summary = result.summary
    return SeedFigures(
        run_id=result.run_id,
        seed=result.config.seed,
        steady_train_images_per_s=summary.steady_train_images_per_s,
        eval_images_per_s=summary.eval_images_per_s,
        final_test_accuracy_pct=summary.final_test_accuracy_pct,
        time_to_target_s=summary.time_to_target_s,
        peak_host_rss_mb=summary.peak_host_rss_mb,
        peak_device_mem_mb=summary.peak_device_mem_mb,
        weights_sha256=result.weights_sha256,
        torch=result.environment.torch,
    )


def make_baseline(results: list[RunResult], name: str | None = None) -> Baseline:
    """One baseline from results of one config on one piece of hardware, one per seed."""
    if not results:
        raise BaselineError("no results given")
    first = results[0]
    for result in results[1:]:
        differences = identity_of(result).differences(identity_of(first))
        if differences:
            raise BaselineError(
                f"{result.run_id} does not match {first.run_id}: {', '.join(differences)}"
            )
    seeds = [r.config.seed for r in results]
    if len(set(seeds)) != len(seeds):
        raise BaselineError(f"a seed appears twice among the results: {sorted(seeds)}")
    return Baseline(
        name=name or default_name(first),
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        config=replace(first.config),
        hardware=hardware_of(first.environment),
        data_sha256=first.data.sha256,
        runs=sorted((figures_of(r) for r in results), key=lambda f: f.seed),
    )


def save_baseline(baseline: Baseline, folder: Path, force: bool = False) -> Path:
    if not baseline.name or "/" in baseline.name or baseline.name.startswith("."):
        raise BaselineError(f"not a usable baseline name: {baseline.name!r}")
    path = folder / f"{baseline.name}.json"
    if path.exists() and not force:
        raise BaselineError(f"{path} exists; pass --force to replace it")
    write_json_atomic(path, asdict(baseline), replace=force)
    return path


def baseline_from_dict(data: Any, raw: str | bytes | None = None) -> Baseline:
    check_version(data, BASELINE_MARKER, BASELINE_SCHEMA_VERSION, "baseline schema version")
    return validate_document(BASELINE_SCHEMA, data, raw)


def load_baselines(path: Path) -> tuple[list[Baseline], list[tuple[Path, str]]]:
    """Every baseline in `path` (a file, or a folder searched recursively), and the files that
    could not be read as one, with the reason. In a folder, results, sweeps and benchmark
    exports kept beside the baselines are passed over; a file given by name must be a
    baseline."""
    named = not path.is_dir()
    baselines, problems = [], []
    for file in json_files(path):
        try:
            data, raw = read_document(file)
            kind = document_kind(data)
            if kind not in (BASELINE, None):
                if named:
                    problems.append((file, f"not a baseline but a {kind} document"))
                continue
            baselines.append(baseline_from_dict(data, raw))
        except ResultFileError as error:
            problems.append((file, str(error)))
    return baselines, problems
