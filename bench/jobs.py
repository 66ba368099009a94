"""What each command does, end to end: resolve the config, measure, store, judge, show.

The CLI parses options and renders what these return; the rooms below do the work:
bench.config (defaults, resolving, what "the same experiment" is), bench.measure (timed runs
that write nothing), bench.storage (schemas and files), bench.judge (statistics and verdicts)
and bench.show (tables, plots, reports).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config.settings import (
    BASELINES_DIR,
    DIST_TIMEOUT_S,
    PORTABLE_ENVIRONMENT,
    PORTABLE_MARKER,
    PORTABLE_THREADS,
    RunConfig,
    Tolerances,
    utc_stamp,
)
from bench.errors import ConfigError, ReplicateError, ResultFileError
from bench.judge.claim import device_figures
from bench.judge.compare import Comparison, compare
from bench.judge.devices import device_speedups
from bench.judge.history import histories
from bench.judge.portable import PortableVerdict, judge_portable
from bench.judge.report import Curves, ReportInputs, ab_comparisons, pair_log_ratios
from bench.judge.sequential import Look, look, verdict_after
from bench.judge.stats import SpeedEffect
from bench.judge.verdicts import scaling_efficiency_pct, scaling_reference
from bench.storage.baselines import Baseline, load_baselines, make_baseline, save_baseline
from bench.storage.experiment import experiment_label
from bench.storage.files import (
    collect,
    load_result,
    output_folder,
    save_result,
    save_sweep,
    save_weights,
    written_together,
)
from bench.storage.portable import (
    PortableDigests,
    load_portable_digests,
    save_portable_digests,
)
from bench.storage.records import Peak, Replicate, SweepPoint
from bench.storage.results import Environment, RunResult, new_run_id

if TYPE_CHECKING:  # the measuring room loads torch: only the commands that measure import it
    from bench.measure.run import Measurement, Reporter
    from mnist_core import MnistData


@dataclass
class RecordedRun:
    result: RunResult
    paths: list[Path]  # the result first, then the weights and the plot when asked for


# The files a run writes, by suffix after its run id; the longest decides the writability probe.
WEIGHTS_SUFFIX, PLOT_SUFFIX = "-weights.pt", "-loss.png"


def run_folder(configs: Sequence[RunConfig], out_dir: Path) -> AbstractContextManager[Path]:
    """`out_dir` as an output folder probed with the longest name these runs will write."""
    longest = max(len(new_run_id(config, datetime.now(UTC))) for config in configs)
    return output_folder(out_dir, longest + len(WEIGHTS_SUFFIX))


def record(measurement: Measurement, out_dir: Path, *, plot: bool) -> RecordedRun:
    """Write a measured run's files together or not at all: its weights (when kept), its
    result, then its loss plot (when asked for: drawing costs a second of matplotlib, and the
    figures do not need it). A failure or Ctrl-C part-way removes what was written."""
    result = measurement.result
    with written_together() as written:
        if measurement.weights is not None:
            weights = save_weights(
                measurement.weights, out_dir / f"{result.run_id}{WEIGHTS_SUFFIX}"
            )
            written.append(weights)
            result.weights_file = weights.name
        written.insert(0, save_result(result, out_dir))
        if plot:
            from bench.show.plots import plot_loss

            written.append(plot_loss(result, out_dir / f"{result.run_id}{PLOT_SUFFIX}"))
    return RecordedRun(result, written)


def with_scaling_reference(result: RunResult, reference: Path | None, baselines_dir: Path) -> None:
    """Scaling efficiency against --reference (a one-process run of the same experiment and
    implementation on the same machine), else such a baseline; a note when there is none."""
    assert result.distributed is not None
    single = load_result(reference) if reference is not None else None
    baselines = (
        load_baselines(baselines_dir)[0] if single is None and baselines_dir.exists() else []
    )
    found = scaling_reference(result, single, baselines)
    if isinstance(found, str):
        result.notes.append(f"no scaling efficiency: {found}")
        return
    name, rate = found
    # Rebuilt, so the schema checks the new figures like any other.
    result.distributed = dataclasses.replace(
        result.distributed,
        reference_run=name,
        reference_train_images_per_s=rate,
        scaling_efficiency_pct=scaling_efficiency_pct(result, rate),
    )


def check_fits(configs: Sequence[RunConfig], data: MnistData) -> None:
    """Training batches no larger than the training split. (An evaluation batch larger than
    the test split is harmless: the test set is then one batch.)"""
    for config in configs:
        if config.batch_size > len(data.train):
            raise ConfigError(
                f"--batch-size {config.batch_size} is larger than the {len(data.train)} "
                "training images"
            )


def check_launch(
    config: RunConfig,
    *,
    devices: Sequence[str],
    loaders: Sequence[str],
    world_size: int,
    out_dir: Path,
    data_dir: Path | None,
    download: bool,
    reference: Path | None,
) -> None:
    """Before `--nproc-per-node` starts torchrun: the options, the output folder, the
    reference and the data, so that a user error ends like any other (one line, exit 2)."""
    from bench.config.resolve import plan
    from mnist_core import load_mnist

    configs = plan(config, devices, loaders, world_size=world_size)
    with run_folder(configs, out_dir):  # left empty, it goes again: the ranks make their own
        if reference is not None:
            load_result(reference)
        check_fits(configs, load_mnist(data_dir, download=download))


def run_all(
    config: RunConfig,
    *,
    devices: Sequence[str],
    loaders: Sequence[str],
    out_dir: Path,
    data_dir: Path | None,
    download: bool,
    save_weights: bool = False,
    plot: bool = False,
    reporter: Reporter | None = None,
    reference: Path | None = None,
    dist_timeout_s: float = DIST_TIMEOUT_S,
    baselines_dir: Path = BASELINES_DIR,
    group: str | None = None,
    replicate: int | None = None,
) -> list[RecordedRun]:
    """Check everything a user can get wrong, then benchmark each device × loader in turn.

    Each finished run is written before the next one starts. Under torchrun every rank trains
    its shard and rank 0 alone writes the one result.
    """
    import torch

    from bench.config.resolve import plan
    from bench.measure.run import benchmark
    from mnist_core import load_mnist
    from mnist_core.distributed import init_process_group, rank_from_environment, shutdown

    rank = rank_from_environment()
    configs = plan(config, devices, loaders, rank)
    main = rank is None or rank.is_main
    recorded: list[RecordedRun] = []
    with run_folder(configs, out_dir) if main else nullcontext():
        if main and reference is not None:
            load_result(reference)  # a bad reference fails now, not after training
        data = load_mnist(data_dir, download=download)
        check_fits(configs, data)
        try:
            if rank:
                init_process_group(torch.device(configs[0].device), dist_timeout_s)
            for run_config in configs:
                if reporter and main:
                    reporter.run_started(run_config)
                measurement = benchmark(
                    run_config,
                    data,
                    reporter=reporter if main else None,
                    rank=rank,
                    keep_weights=save_weights,
                )
                if measurement is None:
                    continue
                # Rebuilt, so the schema checks the group as it checks every field.
                measurement.result = dataclasses.replace(
                    measurement.result, group=group, replicate=replicate
                )
                if measurement.result.distributed:
                    with_scaling_reference(measurement.result, reference, baselines_dir)
                recorded.append(record(measurement, out_dir, plot=plot))
        finally:
            if rank:
                shutdown()
    return recorded


def check_portable(devices: Sequence[str], threads: int | None, nproc: int | None) -> None:
    """`run --portable` pins the CPU's arithmetic: one CPU process of one thread."""
    if list(devices) != ["cpu"]:
        raise ConfigError(f"--portable pins the CPU's arithmetic: give -d cpu, not {devices}")
    if threads not in (None, PORTABLE_THREADS):
        raise ConfigError(f"--portable runs {PORTABLE_THREADS} thread, not --threads {threads}")
    if nproc is not None:
        raise ConfigError("--portable runs one process: leave out --nproc-per-node")


def rerun_portable(run_arguments: Sequence[str]) -> int:
    """`run` with these arguments in a fresh process with the portable knobs set before torch
    loads (its libraries read them once, when they start); its exit code."""
    import os
    import sys

    environment = os.environ | PORTABLE_ENVIRONMENT | {PORTABLE_MARKER: "1"}
    command = [sys.executable, "-m", "bench", "run", *run_arguments]
    return subprocess.run(command, env=environment, check=False).returncode


def describe_environment(
    device: str, peak_precision: str | None
) -> tuple[Environment, Peak | None, str | None]:
    """The fingerprint of `device` and, when a precision is given, its peak measured now (which
    also refreshes the peak cache that `run` reads, or a note says why it could not)."""
    from bench.config.resolve import check_precision
    from bench.measure.environment import fingerprint
    from bench.measure.peak import refresh_peak
    from mnist_core import resolve_device

    resolved = resolve_device(device)
    environment = fingerprint(resolved)
    if peak_precision is None:
        return environment, None, None
    check_precision(peak_precision, resolved.type)
    return environment, *refresh_peak(
        resolved, environment.device_name, peak_precision, environment.threads
    )


def compare_paths(
    paths: Sequence[Path], baselines_path: Path, tolerances: Tolerances
) -> Comparison:
    """`compare` over results files or folders and a baselines folder (absent: none)."""
    results, problems = collect(paths)
    baselines, baseline_problems = (
        load_baselines(baselines_path) if baselines_path.exists() else ([], [])
    )
    return compare(results, baselines, tolerances, problems, baseline_problems)


def save_baseline_from(
    paths: Sequence[Path], *, name: str | None, folder: Path, force: bool
) -> tuple[Baseline, Path]:
    """Results of one experiment × implementation × machine, one per seed, as one baseline."""
    loaded, problems = collect(paths)
    if problems:
        path, reason = problems[0]
        raise ResultFileError(f"{path}: {reason}")
    baseline = make_baseline([result for _, result in loaded], name)
    return baseline, save_baseline(baseline, folder, force)


def reproduction(paths: Sequence[Path]) -> tuple[str, list[tuple[Path, str]]]:
    """The reproduction report's markdown, and the files skipped (with the reason)."""
    from bench.show.reproduction import reproduction_report

    results, problems = collect(paths)
    if not results:
        raise ResultFileError(f"no usable results in {', '.join(str(p) for p in paths)}")
    return reproduction_report([result for _, result in results]), problems


def run_sweep(
    config: RunConfig,
    *,
    devices: Sequence[str],
    batch_sizes: Sequence[int],
    threads: Sequence[int | None],
    steps: int,
    data_dir: Path | None,
    download: bool,
    out_dir: Path,
    on_point: Callable[[SweepPoint], None] | None = None,
) -> tuple[list[SweepPoint], Path, Path]:
    """Measure every device × thread count × batch size; write the sweep document and plot."""
    from bench.config.resolve import check_threads
    from bench.measure.sweep import WARMUP_STEPS, sweep
    from bench.show.plots import plot_sweep
    from mnist_core import load_mnist

    for count in threads:
        if count is not None:
            check_threads(count)

    # Two sweeps finishing in the same second must not share a name.
    stem = f"sweep-{utc_stamp()}-{secrets.token_hex(4)}"
    with output_folder(out_dir, len(stem) + len(".json")), written_together() as written:
        data = load_mnist(data_dir, download=download)
        for size in batch_sizes:
            if math.ceil(len(data.train) / size) <= WARMUP_STEPS:
                raise ConfigError(
                    f"--batch-sizes {size} leaves no batch of the {len(data.train)} training "
                    f"images to time after {WARMUP_STEPS} warm-up steps"
                )
        points = sweep(
            config, list(devices), list(batch_sizes), list(threads), data, steps, on_point=on_point
        )
        written.append(save_sweep([asdict(point) for point in points], out_dir / f"{stem}.json"))
        written.append(plot_sweep(points, out_dir / f"{stem}.png"))
    json_path, plot_path = written
    return points, json_path, plot_path


REPLICATE_TIMEOUT_S = 3600  # a replicate that hangs ends the series, not the machine


# After Ctrl-C or SIGTERM, how long a replicate has to clean up before it is killed.
REPLICATE_GRACE_S = 30


def _end_process_group(process: subprocess.Popen[str]) -> None:
    """End `process` and whatever it started, and reap it: SIGTERM first, which the CLI takes
    like Ctrl-C (its unfinished files removed; SIGINT could be ignored in a background job),
    then SIGKILL if it has not ended in time."""
    for signum, grace_s in ((signal.SIGTERM, REPLICATE_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.communicate(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_in_fresh_process(command: list[str], what: str, folder: Path) -> list[Path]:
    """`command` (a `run`) in a fresh process; the result files it wrote into `folder`.

    The process leads its own process group, which this ends and reaps (see
    _end_process_group) when it times out or when this one is interrupted or terminated: no
    replicate outlives the series that started it, and a terminal's Ctrl-C reaches it once,
    through this process."""
    before = set(folder.glob("*.json")) if folder.exists() else set()
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ReplicateError(f"{what}: cannot start {command[0]!r} ({reason})") from None
    try:
        stdout, stderr = process.communicate(timeout=REPLICATE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _end_process_group(process)
        raise ReplicateError(f"{what}: no result after {REPLICATE_TIMEOUT_S} s") from None
    except BaseException:
        _end_process_group(process)
        raise
    if process.returncode != 0:
        lines = (stderr.strip() or stdout.strip() or "no output").splitlines()
        raise ReplicateError(f"{what}: exit {process.returncode}: {lines[-1]}")
    return sorted(set(folder.glob("*.json")) - before)


def new_group_id() -> str:
    return f"g{utc_stamp()}-{secrets.token_hex(3)}"


def replicate_seeds(seed: int, repeat: int, same_seed: bool) -> list[int]:
    """`run --repeat`: the seed of each replicate, consecutive unless `same_seed`."""
    from bench.config.settings import MAX_SEED

    if not same_seed and seed + repeat - 1 > MAX_SEED:
        raise ConfigError(f"--seed {seed} with --repeat {repeat} runs past the largest seed")
    return [seed] * repeat if same_seed else list(range(seed, seed + repeat))


def run_repeated(
    run_arguments: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path,
    on_replicate: Callable[[Replicate], None] | None = None,
) -> list[Replicate]:
    """`run --repeat`: each replicate a fresh `run` process with its seed, all tagged as one
    group; every result it writes (one per device × loader) is a replicate."""
    import sys

    group = new_group_id()
    replicates: list[Replicate] = []
    with output_folder(out_dir, 64):
        for index, seed in enumerate(seeds, 1):
            command = [sys.executable, "-m", "bench", "run", *run_arguments]
            command += ["--seed", str(seed), "--group", group, "--replicate", str(index)]
            command += ["--out", str(out_dir)]
            for path in run_in_fresh_process(command, f"replicate {index}", out_dir):
                replicates.append(Replicate(index, path, load_result(path)))
                if on_replicate:
                    on_replicate(replicates[-1])
    return replicates


@dataclass
class AbProgress:
    """One pair done: the runs so far and where the test stands."""

    pairs: int
    look: Look
    elapsed_s: float


def run_ab(
    *,
    variants: dict[str, tuple[list[str], list[str]]],
    common: Sequence[str],
    out_dir: Path,
    margin: float,
    max_pairs: int,
    max_time_s: float,
    on_replicate: Callable[[Replicate], None] | None = None,
    on_pair: Callable[[AbProgress], None] | None = None,
) -> tuple[list[Replicate], SpeedEffect]:
    """Run the variants in interleaved pairs, A B, B A, A B …, each replicate a fresh process,
    so that drift of the machine hits both alike and neither always runs second; after each
    pair the sequential test (bench.judge.sequential) stops with a verdict or asks for another,
    until `max_pairs` or `max_time_s` (the next pair would pass it) ends it inconclusive.
    `variants` maps "A" and "B" to (interpreter command, run options); the interpreter lets a
    variant be another environment, e.g. another torch through `uv run --with torch==X python`."""
    replicates: list[Replicate] = []
    started = time.monotonic()
    with output_folder(out_dir, 64):
        for pair in range(1, max_pairs + 1):
            for name in ("A", "B") if pair % 2 else ("B", "A"):
                python, options = variants[name]
                folder = out_dir / name
                command = [*python, "-m", "bench", "run", *common, *options, "--out", str(folder)]
                order = len(replicates) + 1
                new = run_in_fresh_process(command, f"variant {name}, replicate {order}", folder)
                if len(new) != 1:
                    raise ConfigError(
                        f"variant {name} wrote {len(new)} results per replicate: give it one "
                        "device and one loader"
                    )
                replicates.append(Replicate(order, new[0], load_result(new[0]), variant=name))
                if on_replicate:
                    on_replicate(replicates[-1])
            ratios = pair_log_ratios(replicates)
            elapsed = time.monotonic() - started
            if on_pair:
                on_pair(AbProgress(pair, look(ratios, margin), elapsed))
            effect = verdict_after(
                ratios, margin, elapsed_s=elapsed, max_pairs=max_pairs, max_time_s=max_time_s
            )
            if effect is not None:
                return replicates, effect
    raise ConfigError("--max-pairs must be at least 1")


def report_inputs(
    paths: Sequence[Path], baselines_path: Path, tolerances: Tolerances, ab_margin_pct: float
) -> ReportInputs:
    """`report --html`: the results and baselines under `paths` (and in `baselines_path`),
    their histories with change points, each group's latest sitting judged against its
    baseline, devices against the CPU, the claim, and the `ab` folders."""
    results, problems = collect(paths)
    baselines: dict[str, Baseline] = {}
    for root in [*paths, baselines_path]:
        if root.exists():
            found, baseline_problems = load_baselines(root)
            baselines.update((baseline.name, baseline) for baseline in found)
            known = {path for path, _ in problems}  # unreadable files: said once
            problems += [problem for problem in baseline_problems if problem[0] not in known]
    if not results and not baselines:
        raise ResultFileError(f"no results or baselines in {', '.join(map(str, paths))}")
    runs = [result for _, result in results]
    found_histories = histories(runs, list(baselines.values()), tolerances.throughput_pct)
    latest_ids = {
        run.run_id
        for history in found_histories
        for run in next((s.runs for s in reversed(history.sittings) if s.source == "results"), [])
    }
    latest = compare(
        [(path, result) for path, result in results if result.run_id in latest_ids],
        list(baselines.values()),
        tolerances,
    )
    by_experiment: dict[str, list[RunResult]] = {}
    for result in runs:
        by_experiment.setdefault(experiment_label(result), []).append(result)
    return ReportInputs(
        sources=list(paths),
        results=results,
        latest=latest,
        histories=found_histories,
        speedups=device_speedups(latest),
        curves=[
            Curves(experiment, mine, device_figures(mine))
            for experiment, mine in by_experiment.items()
        ],
        ab=ab_comparisons(results, ab_margin_pct / 100),
        problems=problems + latest.problems,
        generated_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def verify_portable(
    seeds: Sequence[int],
    reference_path: Path,
    out_dir: Path,
    data_dir: Path | None,
    run_options: Sequence[str] = (),
    *,
    record: bool = False,
    on_result: Callable[[RunResult], None] | None = None,
) -> PortableVerdict:
    """Each seed as `run -d cpu --portable` in a fresh process, judged against the reference
    digests (with `record`, first written from these runs: how the committed ones were made)."""
    import sys

    data = ["--data-dir", str(data_dir)] if data_dir else []
    results: list[RunResult] = []
    with output_folder(out_dir, 64):
        for seed in seeds:
            command = [sys.executable, "-m", "bench", "run", "-d", "cpu", "--portable"]
            command += ["--seed", str(seed), "--out", str(out_dir), *data, *run_options]
            for path in run_in_fresh_process(command, f"seed {seed}", out_dir):
                results.append(load_result(path))
                if on_result:
                    on_result(results[-1])
    if record:
        save_portable_digests(portable_reference(results), reference_path)
    return judge_portable(load_portable_digests(reference_path), results)


def portable_reference(results: Sequence[RunResult]) -> PortableDigests:
    """The reference digests of portable runs of one experiment, one per seed."""
    from bench.show.tables import machine_label

    first = results[0]
    if not all(r.environment.math and r.environment.math.portable for r in results):
        raise ConfigError("a reference needs runs made in portable mode")
    return PortableDigests(
        recorded_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        torch=first.environment.torch,
        torch_git=first.environment.math.torch_git if first.environment.math else None,
        machine=machine_label(first),
        config=dataclasses.replace(first.config),
        data_sha256=first.data.sha256,
        digests={str(r.config.seed): r.weights_sha256 for r in results},
    )
