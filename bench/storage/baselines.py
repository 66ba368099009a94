"""Recorded baselines: each seed's figures for one config on one piece of hardware."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.config.experiment import (
    Hardware,
    Identity,
    default_name,
    hardware_of,
    identity,
    identity_of,
)
from bench.config.settings import RunConfig
from bench.storage.files import BASELINE, document_kind, json_files, read_json, write_json_atomic
from bench.storage.results import ResultFileError, RunResult, build_dataclass

BASELINE_SCHEMA_VERSION = 2
BASELINE_MARKER = "baseline_schema_version"


class BaselineError(ValueError):
    """Results that cannot become one baseline, or a baseline that cannot be written."""


@dataclass
class SeedFigures:
    run_id: str
    seed: int
    steady_train_images_per_s: float
    eval_images_per_s: float
    final_test_accuracy_pct: float
    time_to_target_s: float | None
    peak_host_rss_mb: float
    peak_device_mem_mb: float | None
    weights_sha256: str
    torch: str


@dataclass
class Baseline:
    name: str
    created_utc: str
    config: RunConfig  # its seed is the first run's; `runs` holds every seed
    hardware: Hardware
    data_sha256: str
    runs: list[SeedFigures]
    baseline_schema_version: int = BASELINE_SCHEMA_VERSION

    def seed_figures(self, seed: int) -> SeedFigures | None:
        return next((run for run in self.runs if run.seed == seed), None)

    @property
    def identity(self) -> Identity:
        return identity(self.config, self.hardware, self.data_sha256)


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
    write_json_atomic(path, asdict(baseline))
    return path


def baseline_from_dict(data: Any) -> Baseline:
    if not isinstance(data, dict):
        raise ResultFileError("not a JSON object")
    version = data.get(BASELINE_MARKER)
    if version != BASELINE_SCHEMA_VERSION:
        raise ResultFileError(
            f"baseline schema version {version!r}, this tool reads {BASELINE_SCHEMA_VERSION}"
        )
    baseline = build_dataclass(Baseline, data)
    if not baseline.runs:
        raise ResultFileError("baseline holds no runs")
    return baseline


def load_baselines(folder: Path) -> tuple[list[Baseline], list[tuple[Path, str]]]:
    """Every baseline in `folder` (a file, or a folder searched recursively), and the files that
    are not one of the harness's documents, with the reason."""
    baselines, problems = [], []
    for path in json_files(folder):
        try:
            data = read_json(path)
            kind = document_kind(data)
            if kind not in (BASELINE, None):
                continue  # a result, sweep or benchmark export kept beside the baselines
            baselines.append(baseline_from_dict(data))
        except ResultFileError as error:
            problems.append((path, str(error)))
    return baselines, problems
